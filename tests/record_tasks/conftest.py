"""Test double for the MODEL only: lm-eval itself (task loading, filters, scoring, logging) runs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lm_failtrace.record.tasks import tasks_dir

#: script(doc, repeat) -> the completion (a RolloutText with metadata, or a plain str).
Script = Callable[[dict, int], str]


def scripted_lm(script: Script) -> Any:
    """An lm-eval ``LM`` that answers each request from ``script``.

    lm-eval sends a task's ``repeats`` copies of a doc's request in a row; the repeat index passed
    to the script is the copy's position, which is how a real backend derives it too.
    """
    from lm_eval.api.model import LM

    class ScriptedLM(LM):
        def __init__(self) -> None:
            super().__init__()
            self.requests: list[tuple[str, dict]] = []

        def generate_until(self, requests: list, disable_tqdm: bool = False) -> list[str]:
            seen: dict[tuple[str, int], int] = defaultdict(int)
            out = []
            for request in requests:
                key = (request.task_name, request.doc_id)
                out.append(script(request.doc, seen[key]))
                seen[key] += 1
                self.requests.append(request.args)
            return out

        def loglikelihood(self, requests: list, disable_tqdm: bool = False) -> list:
            raise NotImplementedError("failtrace tasks only generate")

        def loglikelihood_rolling(self, requests: list, disable_tqdm: bool = False) -> list:
            raise NotImplementedError("failtrace tasks only generate")

    return ScriptedLM()


def run_task(
    task: str, lm: Any, include_path: Path | None = None, limit: int | None = None
) -> dict:
    """Run ``task`` through ``lm_eval.simple_evaluate`` with samples logged; the results dict."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=[str(include_path or tasks_dir())], include_defaults=False)
    return lm_eval.simple_evaluate(
        model=lm,
        tasks=[task],
        task_manager=manager,
        limit=limit,
        log_samples=True,
        bootstrap_iters=0,
    )


@pytest.fixture
def run() -> Callable[..., dict]:
    return run_task


def local_data_variant(
    directory: Path, include: Path, task: str, data_files: dict[str, Path], **overrides: Any
) -> Path:
    """A folder holding one YAML that runs ``include``'s task on local JSONL files.

    The task definition is the shipped one, included unchanged; only the data source (and any
    ``overrides``) is replaced, as a user would do to point a hub task at a local copy.
    """
    import yaml

    directory.mkdir(parents=True, exist_ok=True)
    document = {
        "include": str(include),
        "task": task,
        "dataset_path": "json",
        "dataset_name": None,
        "dataset_kwargs": {"data_files": {k: str(v) for k, v in data_files.items()}},
        **overrides,
    }
    (directory / f"{task}_local.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return directory


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    import json

    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path
