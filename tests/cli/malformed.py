"""The harness and the inputs of the malformed-input corpus (``test_malformed_corpus.py``).

:func:`run_case` runs one ``failtrace`` command in-process on inputs a case built and asserts the
README's contract for bad input; the builders write valid inputs (a profile table, an lm-eval run
folder of a failtrace task, a repair checkpoint's first line, a real Inspect log) for cases to
break. A plain module,
not a conftest, so the test file imports it by a name unique in the suite.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from lm_failtrace.cli import main
from lm_failtrace.datasets import paper_profiles_path
from lm_failtrace.repair.runner import RepairConfig
from lm_failtrace.rollouts import find_runs

#: A case builds its inputs under the folder it is given and returns (arguments, text the error
#: line must hold: one string, or a tuple of strings that must all be there).
#: A case builds its inputs under the folder it is given and returns (arguments, text the error
#: line must hold: one string, or a tuple of strings that must all be there).
Build = Callable[[Path], tuple[list[str], "str | tuple[str, ...]"]]


STAMP = "2026-01-01T00-00-00.000000"


TASK = "failtrace_arith"


CELL = "sft0p6b|gsm8k"


ROW = 2  # the row a table corruption hits (0-based): CSV line 4, Parquet row 3


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` (symlinks not followed) with its kind and content."""
    seen: dict[str, tuple] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                seen[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                seen[rel] = ("dir",)
            else:
                seen[rel] = ("file", path.read_bytes())
    return seen


def run_case(
    build: Build, root: Path, monkeypatch: pytest.MonkeyPatch, *, unprivileged: bool = False
) -> str:
    """Run one case in ``root``; assert the bad-input contract; return the error line."""
    args, expected = build(root)
    before = snapshot(root)
    monkeypatch.chdir(root)
    with as_unprivileged() if unprivileged else contextlib.nullcontext():
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, (args, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("Error")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    for text in (expected,) if isinstance(expected, str) else expected:
        assert text in errors[0], (text, errors[0])
    assert snapshot(root) == before  # nothing created, removed or changed
    return errors[0]


@contextlib.contextmanager
def as_unprivileged() -> Iterator[None]:
    """Run as ``nobody`` when tests run as root (root reads and writes through permissions)."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def good_frame(rows: int = 30) -> pd.DataFrame:
    """A valid profile table: one cell of the paper's data with complete bookkeeping columns."""
    frame = pd.read_csv(paper_profiles_path())
    frame = frame.loc[frame["cell"] == CELL].head(rows).reset_index(drop=True)
    frame.insert(4, "n_rollouts", 50)
    frame["pass_rate"] = 1 - frame["n_failed_rollouts"] / 50
    return frame


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def where(suffix: str, row: int = ROW) -> str:
    """How an error at 0-based data row ``row`` is located in a CSV or a Parquet table."""
    return f"line {row + 2}" if suffix == ".csv" else f"row {row + 1}"


def set_value(frame: pd.DataFrame, column: str, value: object, row: int = ROW) -> pd.DataFrame:
    frame = frame.copy()
    if isinstance(value, str) and not pd.api.types.is_object_dtype(frame[column]):
        frame[column] = frame[column].astype(str)  # Parquet needs one type per column
    elif isinstance(value, float) and pd.api.types.is_integer_dtype(frame[column]):
        frame[column] = frame[column].astype(float)
    frame.loc[row, column] = value
    return frame


def renamed(frame: pd.DataFrame, model: str) -> pd.DataFrame:
    """Every row of ``frame`` under another model name (cell kept consistent)."""
    return frame.assign(model=model, cell=model + "|" + frame["task"])


def rollouts(model: str = "m", problems: int = 4, repeats: int = 4) -> list[dict]:
    """A run's rollout records: problem p0, p2 fail some, p1, p3 fail all."""
    return [
        {"model": model, "task": TASK, "doc_id": p, "problem_id": f"p{p}", "repeat": r,
         "seed": 100 + r, "answer": str(r), "correct": p % 2 == 0 and r == 0,
         "generated_tokens": 5 + r, "finish_reason": "stop"}
        for p in range(problems) for r in range(repeats)
    ]  # fmt: skip


def write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def run_folder(root: Path, rows: list[dict] | None = None) -> Path:
    """An lm-eval output folder of a failtrace task: samples log, side-car and results JSON."""
    rows = rows if rows is not None else rollouts()
    folder = root / "runs" / "m"
    docs = sorted({r["doc_id"] for r in rows})
    samples = [
        {"doc_id": d, "filter": "failtrace", "doc": {"q": d}, "target": "0",
         "arguments": {"gen_args_0": {"arg_0": "Q", "arg_1": {"until": ["\n"]}}},
         "resps": [[r["answer"] for r in rows if r["doc_id"] == d]],
         "failtrace_rollouts": [r for r in rows if r["doc_id"] == d]}
        for d in docs
    ]  # fmt: skip
    write_jsonl(folder / f"samples_{TASK}_{STAMP}.jsonl", samples)
    write_jsonl(folder / f"rollouts_{TASK}_{STAMP}.jsonl", rows)
    results = {
        "results": {TASK: {"pass@1,failtrace": 0.1}},
        "model_name": "m",
        "config": {"model": "failtrace-hf", "model_args": "pretrained=/nowhere"},
    }
    (folder / f"results_{STAMP}.json").write_text(json.dumps(results), encoding="utf-8")
    return root / "runs"


def sidecar(root: Path) -> Path:
    return root / "runs" / "m" / f"rollouts_{TASK}_{STAMP}.jsonl"


def checkpoint_header(runs: Path) -> dict:
    """The first line ``failtrace repair``'s default settings write for this run folder."""
    samples = sorted(str(r.files.get("samples")) for r in find_runs(runs))
    return json.loads(json.dumps({"config": asdict(RepairConfig()), "runs": samples}))


@functools.cache
def _inspect_log(scored: bool, partial: bool, effort: str) -> bytes:
    """The bytes of one real Inspect log of ``mockllm`` (2 samples x 2 epochs), made once."""
    from inspect_ai import Task
    from inspect_ai import eval as inspect_eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ModelOutput, ModelUsage, get_model
    from inspect_ai.scorer import Score, Target, accuracy, match, scorer

    def answer(*_: object) -> ModelOutput:  # usage given: Inspect counts nothing itself
        out = ModelOutput.from_content("mockllm/model", "4")
        out.usage = ModelUsage(input_tokens=5, output_tokens=3, total_tokens=8)
        return out

    @scorer(metrics=[accuracy()])
    def partial_credit() -> Callable:
        async def score(state: object, target: Target) -> Score:
            return Score(value="P", answer="x")

        return score

    dataset = [Sample(input=f"What is {i} + {i}?", target=str(2 * i), id=f"s{i}") for i in (1, 2)]
    task = Task(dataset=dataset, scorer=partial_credit() if partial else match(), name="tiny")
    with tempfile.TemporaryDirectory() as folder:
        model = get_model("mockllm/model", custom_outputs=answer)
        (log,) = inspect_eval(task, model=model, log_dir=folder, epochs=2, score=scored,
                              display="none", reasoning_effort=effort)  # fmt: skip
        return Path(log.location).read_bytes()


def inspect_log(
    path: Path, *, scored: bool = True, partial: bool = False, effort: str = "low"
) -> Path:
    """A real Inspect log written to ``path`` (``scored=False``: without scores;
    ``partial``: every score is ``P``, partial credit)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_inspect_log(scored, partial, effort))
    return path
