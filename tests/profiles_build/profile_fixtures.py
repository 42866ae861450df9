"""Hand-made rollouts with hand-computed features, written as side-car, samples log and tables.

A plain module (not conftest) so test files import it by a name unique in the whole suite.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

STAMP_OLD = "2026-06-01T09-00-00.000000"
STAMP = "2026-06-10T12-00-00.000000"


def rollout(
    problem_id: str,
    repeat: int,
    answer: str | None,
    correct: bool,
    reason: str | None = "stop",
    tokens: int | None = 10,
    **extra: Any,
) -> dict[str, Any]:
    """One rollout record (RolloutRecord keys) of model ``m``, task ``t`` unless overridden."""
    record = {
        "model": "m",
        "task": "t",
        "doc_id": int(problem_id[1:]),
        "problem_id": problem_id,
        "repeat": repeat,
        "seed": 1000 + repeat,
        "answer": answer,
        "correct": correct,
        "generated_tokens": tokens,
        "finish_reason": reason,
    }
    record.update(extra)
    return record


#: Model m, task t, N = 4. p1 never fails, so it is not a failure unit.
ROLLOUTS_M: list[dict[str, Any]] = [
    rollout("p0", 0, "5", False, "stop", 10),
    rollout("p0", 1, "5", False, "length", 40),
    rollout("p0", 2, "7", False, "stop", 12),
    rollout("p0", 3, "9", True, "stop", 8),
    *(rollout("p1", r, "1", True) for r in range(4)),
    rollout("p2", 0, None, False, "length", 50),
    rollout("p2", 1, None, False, "length", 50),
    rollout("p2", 2, "3", False, "stop", 20),
    rollout("p2", 3, "4", False, "stop", 22),
    rollout("p3", 0, "1", True),
    rollout("p3", 1, "1", True),
    rollout("p3", 2, "1", True),
    rollout("p3", 3, "2", False, "stop", 5),
]

#: Model m2, task t, N = 2 (its own cell: N is checked per cell), no token counts known.
ROLLOUTS_M2: list[dict[str, Any]] = [
    rollout("p0", 0, "8", False, None, None, model="m2"),
    rollout("p0", 1, "9", False, None, None, model="m2"),
]

ROLLOUTS = ROLLOUTS_M + ROLLOUTS_M2


def _entropy(*counts: int) -> float:
    n = sum(counts)
    return -sum(c / n * math.log(c / n) for c in counts) / math.log(n)


#: The expected profile rows, computed by hand from the definitions (docs/method.md section 3).
EXPECTED: dict[tuple[str, str], dict[str, float]] = {
    ("m", "p0"): {
        "n_rollouts": 4,
        "n_failed_rollouts": 3,
        "pass_rate": 0.25,
        "answer_entropy": _entropy(2, 1),
        "mode_share": 2 / 3,
        "truncation_rate": 1 / 3,
        "no_answer_rate": 0.0,
        "mean_generated_tokens": 62 / 3,
        "max_generated_tokens": 40,
    },
    ("m", "p2"): {
        "n_rollouts": 4,
        "n_failed_rollouts": 4,
        "pass_rate": 0.0,
        "answer_entropy": 0.75,  # answers {none: 2, 3: 1, 4: 1}: 1.5 ln 2 / ln 4
        "mode_share": 0.5,
        "truncation_rate": 0.5,
        "no_answer_rate": 0.5,
        "mean_generated_tokens": 35.5,
        "max_generated_tokens": 50,
    },
    ("m", "p3"): {
        "n_rollouts": 4,
        "n_failed_rollouts": 1,
        "pass_rate": 0.75,
        "answer_entropy": 0.0,
        "mode_share": 1.0,
        "truncation_rate": 0.0,
        "no_answer_rate": 0.0,
        "mean_generated_tokens": 5.0,
        "max_generated_tokens": 5.0,
    },
    ("m2", "p0"): {
        "n_rollouts": 2,
        "n_failed_rollouts": 2,
        "pass_rate": 0.0,
        "answer_entropy": 1.0,
        "mode_share": 0.5,
        "truncation_rate": math.nan,
        "no_answer_rate": 0.0,
        "mean_generated_tokens": math.nan,
        "max_generated_tokens": math.nan,
    },
}


def write_jsonl(path: Path, records: Iterable[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_parquet(path: Path, records: list[dict[str, Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(records), path)
    return path


def samples_lines(
    records: list[dict[str, Any]], task: str = "t", filters: tuple[str, ...] = ("failtrace",)
) -> list[dict[str, Any]]:
    """lm-eval samples-log lines (one per doc and filter) carrying ``failtrace_rollouts``.

    The records lose their ``model`` key, as in a real samples log (the run folder names it).
    """
    by_doc: dict[int, list[dict[str, Any]]] = {}
    for r in records:
        by_doc.setdefault(r["doc_id"], []).append({k: v for k, v in r.items() if k != "model"})
    lines = []
    for filter_name in filters:
        for doc_id, rollouts in by_doc.items():
            lines.append(
                {
                    "doc_id": doc_id,
                    "doc": {"question": f"q{doc_id}", "id": rollouts[0]["problem_id"]},
                    "target": "0",
                    "arguments": {"gen_args_0": {"arg_0": "prompt", "arg_1": {}}},
                    "resps": [[f"text {i}"] for i in range(len(rollouts))],
                    "filtered_resps": [r["answer"] for r in rollouts],
                    "filter": filter_name,
                    "metrics": ["pass@1", "failtrace_rollouts"],
                    "pass@1": sum(r["correct"] for r in rollouts) / len(rollouts),
                    "failtrace_rollouts": rollouts,
                }
            )
    return lines


def write_run(
    folder: Path,
    records: list[dict[str, Any]],
    *,
    stamp: str = STAMP,
    task: str = "t",
    sidecar: bool = True,
    samples: bool = True,
    model_name: str | None = "m",
) -> Path:
    """An lm-eval ``<model_name>`` folder: results JSON, samples log and (optionally) side-car."""
    folder.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"results": {task: {}}, "config": {"model": "hf"}}
    if model_name is not None:
        results["model_name"] = model_name
    (folder / f"results_{stamp}.json").write_text(json.dumps(results), encoding="utf-8")
    if samples:
        write_jsonl(folder / f"samples_{task}_{stamp}.jsonl", samples_lines(records, task))
    if sidecar:
        write_jsonl(folder / f"rollouts_{task}_{stamp}.jsonl", records)
    return folder
