"""Outcome features of one failure unit (method.md section 3) and unbiased pass@k.

One implementation serves both the lm-eval task (per-doc metrics in the samples log) and
``failtrace profile`` (the profile table), so the two can never disagree.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

#: Stand-in answer for a rollout with no extractable answer: it counts as its own value.
NO_ANSWER = "<no answer>"


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
    """Per-unit outcome features over the unit's rollouts.

    Definitions (exact; method.md section 3), over the *failed* rollouts F of the unit:

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
    n = len(correct)
    failed = [i for i in range(n) if not correct[i]]
    n_failed = len(failed)
    out: dict[str, float] = {
        "n_rollouts": float(n),
        "n_failed_rollouts": float(n_failed),
        "pass_rate": (n - n_failed) / n if n else math.nan,
    }
    if n_failed == 0:
        for key in (
            "answer_entropy",
            "mode_share",
            "truncation_rate",
            "no_answer_rate",
            "mean_generated_tokens",
            "max_generated_tokens",
        ):
            out[key] = math.nan
        return out
    values = [answers[i] if answers[i] is not None else NO_ANSWER for i in failed]
    counts = Counter(values)
    if n_failed == 1:
        entropy = 0.0
    else:
        entropy = -sum((c / n_failed) * math.log(c / n_failed) for c in counts.values())
        entropy /= math.log(n_failed)
    out["answer_entropy"] = max(0.0, min(1.0, entropy))
    out["mode_share"] = max(counts.values()) / n_failed
    out["no_answer_rate"] = counts.get(NO_ANSWER, 0) / n_failed
    reasons = [finish_reasons[i] for i in failed] if finish_reasons is not None else [None]
    out["truncation_rate"] = (
        math.nan
        if any(r is None for r in reasons)
        else sum(r == "length" for r in reasons) / n_failed
    )
    tokens = [generated_tokens[i] for i in failed] if generated_tokens is not None else [None]
    if any(t is None for t in tokens):
        out["mean_generated_tokens"] = out["max_generated_tokens"] = math.nan
    else:
        out["mean_generated_tokens"] = sum(tokens) / n_failed  # type: ignore[arg-type]
        out["max_generated_tokens"] = float(max(tokens))  # type: ignore[type-var]
    return out
