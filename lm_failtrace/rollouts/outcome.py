"""Outcome features of one failure unit (docs/method.md section 3) and unbiased pass@k.

One implementation serves both the lm-eval task (per-doc metrics in the samples log) and
``failtrace profile`` (the profile table), so the two can never disagree.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

#: Stand-in answer for a rollout with no extractable answer: it counts as its own value.
NO_ANSWER = "<no answer>"

#: Per-unit values defined over the failed rollouts (NaN for a unit without a failure).
FAILURE_COLUMNS: tuple[str, ...] = (
    "answer_entropy",
    "mode_share",
    "truncation_rate",
    "no_answer_rate",
    "mean_generated_tokens",
    "max_generated_tokens",
)

#: Every per-unit value :class:`OutcomeTally` produces, in profile-table order.
UNIT_COLUMNS: tuple[str, ...] = ("n_rollouts", "n_failed_rollouts", "pass_rate", *FAILURE_COLUMNS)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of Chen et al. (2021), "Evaluating Large Language Models Trained on Code".

    ``1 - C(n - c, k) / C(n, k)`` for ``n`` samples of which ``c`` are correct. Returns NaN when
    ``k > n`` (the estimator is undefined; a spurious 1.0 would flatter the model).
    """
    if k > n or k < 1:
        return math.nan
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def outcome_features(
    answers: Sequence[str | None],
    correct: Sequence[bool],
    finish_reasons: Sequence[str | None] | None = None,
    generated_tokens: Sequence[int | None] | None = None,
) -> dict[str, float]:
    """Per-unit outcome features over the unit's rollouts (definitions: :class:`OutcomeTally`).

    Args:
        answers: extracted answer per rollout (None = no extractable answer).
        correct: whether each rollout is correct.
        finish_reasons: ``"stop"``/``"length"``/None per rollout; None for all = unknown.
        generated_tokens: generated token count per rollout (None = unknown); None for all.
    """
    tally = OutcomeTally()
    for i in range(len(correct)):
        tally.add(
            answers[i],
            bool(correct[i]),
            None if finish_reasons is None else finish_reasons[i],
            None if generated_tokens is None else generated_tokens[i],
        )
    return tally.features()


class OutcomeTally:
    """Running summary of one unit's rollouts, from which its outcome features follow exactly.

    It keeps counts, never the rollouts themselves, so ``failtrace profile`` can stream millions
    of rollouts; :func:`outcome_features` feeds one of these, so the lm-eval task's per-doc
    metrics and the profile table share a single implementation.

    Definitions (exact; docs/method.md section 3), over the *failed* rollouts F of the unit:

    - ``answer_entropy``: Shannon entropy of the distribution of final answers in F (a missing
      answer is its own value), divided by ``log(|F|)``; 0 when ``|F| == 1``.
    - ``mode_share``: share of the most common wrong answer in F (missing answers included as one
      value).
    - ``truncation_rate``: fraction of F whose finish reason is ``length``; NaN when any finish
      reason in F is unknown (never guessed).
    - ``no_answer_rate``: fraction of F with no extractable answer.
    - ``pass_rate``: correct / all rollouts; ``n_rollouts``, ``n_failed_rollouts``.
    - ``mean_generated_tokens``, ``max_generated_tokens``: over F; NaN when any count is unknown.

    A unit with no failed rollout is not a failure unit: its failure features are NaN.
    """

    __slots__ = (
        "answers",
        "n_failed",
        "n_length",
        "n_reason_unknown",
        "n_rollouts",
        "n_tokens_unknown",
        "token_max",
        "token_sum",
    )

    def __init__(self) -> None:
        self.n_rollouts = 0
        self.n_failed = 0
        #: answer (NO_ANSWER for None) -> count among failed rollouts, in order of first sight.
        self.answers: Counter[str] | None = None
        self.n_length = 0
        self.n_reason_unknown = 0
        self.token_sum = 0
        self.token_max = 0
        self.n_tokens_unknown = 0

    def add(
        self,
        answer: str | None,
        correct: bool,
        finish_reason: str | None = None,
        generated_tokens: int | None = None,
    ) -> None:
        """Count one rollout (finish reason and token count matter only for failed ones)."""
        self.n_rollouts += 1
        if correct:
            return
        self.n_failed += 1
        if self.answers is None:
            self.answers = Counter()
        self.answers[NO_ANSWER if answer is None else answer] += 1
        if finish_reason is None:
            self.n_reason_unknown += 1
        elif finish_reason == "length":
            self.n_length += 1
        if generated_tokens is None:
            self.n_tokens_unknown += 1
        else:
            self.token_sum += generated_tokens
            if generated_tokens > self.token_max:
                self.token_max = generated_tokens

    def features(self) -> dict[str, float]:
        """The unit's outcome features and bookkeeping columns (see the class docstring)."""
        n, n_failed = self.n_rollouts, self.n_failed
        out: dict[str, float] = {
            "n_rollouts": float(n),
            "n_failed_rollouts": float(n_failed),
            "pass_rate": (n - n_failed) / n if n else math.nan,
        }
        if n_failed == 0 or self.answers is None:
            out.update(dict.fromkeys(FAILURE_COLUMNS, math.nan))
            return out
        counts = self.answers
        if n_failed == 1:
            entropy = 0.0
        else:
            entropy = -sum((c / n_failed) * math.log(c / n_failed) for c in counts.values())
            entropy /= math.log(n_failed)
        out["answer_entropy"] = max(0.0, min(1.0, entropy))
        out["mode_share"] = max(counts.values()) / n_failed
        out["no_answer_rate"] = counts.get(NO_ANSWER, 0) / n_failed
        out["truncation_rate"] = math.nan if self.n_reason_unknown else self.n_length / n_failed
        if self.n_tokens_unknown:
            out["mean_generated_tokens"] = out["max_generated_tokens"] = math.nan
        else:
            out["mean_generated_tokens"] = self.token_sum / n_failed
            out["max_generated_tokens"] = float(self.token_max)
        return out
