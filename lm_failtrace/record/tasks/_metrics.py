"""Per-doc scoring of all N repeats, and the aggregation of per-doc values in the results JSON.

Every failtrace task lists one metric, :func:`failtrace`, as an lm-eval metric callable: lm-eval
renders the target with the task's own ``doc_to_target`` and calls it with
``references=[target], predictions=[[a_1, ..., a_N]]`` plus the ``exact_match`` options written
under the metric in the YAML. Each answer is scored with lm-eval's own ``exact_match`` and the
result is one dict per doc, which lm-eval expands into one logged metric per key:

- ``pass@1`` (= mean correctness over the N repeats), unbiased ``pass@4`` and ``pass@N``
  (Chen et al. 2021; undefined when k > N),
- ``maj@N``: whether the most common extracted answer is correct,
- the unit's outcome features (docs/method.md section 3, from
  :func:`lm_failtrace.profiles.outcome_features`),
- ``failtrace_rollouts``: the N rollout records
  (:class:`~lm_failtrace.rollouts.RolloutRecord`).

Undefined values (a feature of a doc with no failed rollout, pass@k for k > N, an unknown token
count) are ``None``, which lm-eval writes as JSON ``null`` and every JSON reader reads back as
missing. (``NaN`` would be written as the non-standard token ``NaN``, which strict readers reject.)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from lm_failtrace.record.tasks._record import ExtractedAnswer
from lm_failtrace.rollouts import outcome_features, pass_at_k

#: The k of pass@k reported besides N itself.
PASS_AT_K = (1, 4)


def _defined(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _is_correct(answer: str, target: str, match_kwargs: dict[str, Any]) -> bool:
    from lm_eval.api.metrics import exact_match_hf_evaluate

    return bool(
        exact_match_hf_evaluate(predictions=[answer], references=[target], **match_kwargs)[
            "exact_match"
        ]
    )


def score_rollouts(
    target: str, answers: Sequence[ExtractedAnswer], **match_kwargs: Any
) -> dict[str, Any]:
    """Score all N extracted answers of one doc; the per-doc metric dict (see module docstring).

    Args:
        target: the doc's target as rendered by lm-eval.
        answers: the N answers from :class:`~lm_failtrace.record.tasks.RecordRollouts`.
        match_kwargs: lm-eval ``exact_match`` options (``ignore_case``, ``regexes_to_ignore``, ...).
    """
    records = []
    for answer in answers:
        record = dict(answer.record)
        found = record["answer"] is not None
        record["correct"] = found and _is_correct(str(answer), str(target), match_kwargs)
        records.append(record)
    n = len(records)
    correct = [r["correct"] for r in records]
    n_correct = sum(correct)
    out: dict[str, Any] = {}
    for k in sorted({*PASS_AT_K, n}):
        out[f"pass@{k}"] = _defined(pass_at_k(n, n_correct, k))
    votes = Counter(r["answer"] for r in records if r["answer"] is not None)
    # Counter.most_common breaks ties by first occurrence: the earliest repeat's answer wins.
    majority = votes.most_common(1)[0][0] if votes else None
    out[f"maj@{n}"] = float(
        majority is not None and next(r["correct"] for r in records if r["answer"] == majority)
    )
    features = outcome_features(
        [r["answer"] for r in records],
        correct,
        [r["finish_reason"] for r in records],
        [r["generated_tokens"] for r in records],
    )
    out.update({name: _defined(value) for name, value in features.items()})
    out["failtrace_rollouts"] = records
    return out


def failtrace(
    references: Sequence[str], predictions: Sequence[Sequence[ExtractedAnswer]], **kwargs: Any
) -> dict[str, Any]:
    """lm-eval metric callable (one doc per call): see :func:`score_rollouts`."""
    (target,) = references
    (answers,) = predictions
    return score_rollouts(target, answers, **kwargs)


def aggregate(items: Sequence[Any]) -> float | int | None:
    """Aggregate one metric's per-doc values for the results JSON.

    lm-eval gives all keys of one metric callable the same aggregation function, so this one
    serves them all: lists of rollout records (``failtrace_rollouts``) aggregate to the total
    number of rollouts; numbers to their mean over the docs where they are defined, so a failure
    feature is the mean over failure units and ``None`` values (undefined) are skipped. ``None``
    when no doc defines the value.
    """
    if items and all(isinstance(item, list) for item in items):
        return sum(len(item) for item in items)
    values = [float(v) for v in items if _defined(v) is not None]
    return sum(values) / len(values) if values else None
