"""The rollout record: one row per sampled completion, the one data type recording emits.

The same keys are used in three places, so a rollout reads the same wherever it is found:
the side-car ``rollouts_<task>_<timestamp>.jsonl`` written next to lm-eval's samples, the
per-doc ``failtrace_rollouts`` value that our tasks put in lm-eval's samples log, and the generic
rollout table that ``failtrace profile`` accepts from other harnesses.
"""

from __future__ import annotations

from typing import TypedDict


class RolloutRecord(TypedDict, total=False):
    """One rollout. Unknown values are ``None`` (never guessed).

    Keys:
        model: model name (side-car and generic tables; the run directory names it otherwise).
        task: lm-eval task name.
        doc_id: lm-eval's row index after ``process_docs`` (not stable across runs).
        problem_id: the stable problem identifier from the data (join key across runs).
        repeat: 0-based repeat index among the task's N repeats of this doc.
        seed: the sampling seed used for this repeat, if the backend sets one.
        answer: extracted final answer, or None when none could be extracted.
        correct: whether the answer matched the target.
        generated_tokens: tokens generated, if the backend reports it.
        finish_reason: ``"stop"`` or ``"length"``, if the backend reports it.
        text: the completion text (generic tables only; never required).
        spread, concentration, logit_dispersion: per-rollout logit aggregates (docs/method.md
            section 2), present when an ancestor model was scored.
    """

    model: str
    task: str
    doc_id: int
    problem_id: str
    repeat: int
    seed: int | None
    answer: str | None
    correct: bool
    generated_tokens: int | None
    finish_reason: str | None
    text: str
    spread: float | None
    concentration: float | None
    logit_dispersion: float | None


#: Keys every rollout record must have.
REQUIRED_KEYS: tuple[str, ...] = ("task", "problem_id", "answer", "correct")

#: Finish reasons we record; anything else from a server is normalised or stored as None.
FINISH_REASONS: tuple[str, ...] = ("stop", "length")
