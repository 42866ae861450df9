"""The side-car rollout file: one row per rollout next to lm-eval's samples log.

lm-eval stores only the text of a response, so our tasks list each doc's rollout records under
the per-doc ``failtrace_rollouts`` value of the samples log. After a run, :func:`write_sidecars`
streams each new ``samples_<task>_<timestamp>.jsonl`` and writes
``rollouts_<task>_<timestamp>.jsonl`` beside it: one flat JSON line per rollout with the columns
of :data:`SIDECAR_COLUMNS` (plus the logit aggregates when present), the table ``failtrace
profile`` and other tools read without knowing lm-eval's samples schema.

Streaming and atomic: one samples line in memory at a time, written to a temporary file renamed
into place, so a failed run never leaves a half-written side-car.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path

from lm_failtrace.outputs import atomic_output
from lm_failtrace.rollouts import SAMPLES_KEY, discover, sidecar_path

#: Side-car columns, in order. Unknown values are ``null``.
SIDECAR_COLUMNS: tuple[str, ...] = (
    "model",
    "task",
    "doc_id",
    "problem_id",
    "repeat",
    "seed",
    "answer",
    "correct",
    "generated_tokens",
    "finish_reason",
)
#: Per-rollout logit aggregates (docs/method.md section 2), written when a backend recorded them.
LOGIT_COLUMNS: tuple[str, ...] = ("spread", "concentration", "logit_dispersion")


def _is_failtrace_log(samples: Path) -> bool:
    """Whether the log's first line lists rollouts (stock lm-eval tasks do not)."""
    with samples.open("rb") as fh:
        first = fh.readline()
    try:
        return SAMPLES_KEY in json.loads(first)
    except ValueError:
        return True  # let the reader report the malformed line with its location


def write_sidecar(samples: Path) -> tuple[Path, int] | None:
    """Write the side-car of one samples log; ``None`` when it is not a failtrace task's log.

    Returns:
        the side-car path and its number of rollouts.

    Raises:
        lm_failtrace.errors.InputError: a malformed samples line (named by file and line).
    """
    if not _is_failtrace_log(samples):
        return None
    (source,) = discover(samples)
    target = sidecar_path(samples)
    count = 0
    with atomic_output(target) as tmp, tmp.open("w", encoding="utf-8") as out:
        for record in source:
            row = {key: record.get(key) for key in SIDECAR_COLUMNS}
            row["model"] = record.get("model") or source.model
            row["task"] = record.get("task") or source.task
            row.update({k: record[k] for k in LOGIT_COLUMNS if record.get(k) is not None})
            out.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
            count += 1
    return target, count


def write_sidecars(samples: Iterable[Path]) -> list[Path]:
    """Write the side-car of each samples log, reporting each on stderr; returns those written."""
    written = []
    for path in sorted(samples):
        result = write_sidecar(path)
        if result is None:
            print(
                f"failtrace: no side-car for {path.name}: not a failtrace task (its samples "
                f"have no {SAMPLES_KEY!r})",
                file=sys.stderr,
            )
            continue
        target, count = result
        print(f"failtrace: wrote {target} ({count} rollouts)", file=sys.stderr)
        written.append(target)
    return written
