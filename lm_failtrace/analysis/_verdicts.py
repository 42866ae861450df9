"""Verdicts: the comparisons a reader acts on, computed once per section, worded from the outcome.

A comparison of two policies is their paired per-unit held-out difference with its interval
(:func:`lm_failtrace.analysis._honest.paired_difference`), and its one ``outcome``: ``better``
(interval above 0), ``worse`` (below 0), ``tie`` (covers 0: not distinguishable) or ``too_few``
(no interval). Every sentence is worded from that outcome, so "beats" is said only for
``better``, and two sentences about the same comparison read the same numbers: the selection's
margin over the best fixed operator *is* the rule-vs-best-fixed comparison when the rule is
selected.

``section["verdicts"]`` is a list of mappings:

- ``kind``: ``rule_vs_best_fixed`` (the paper's rule against the cross-validated best fixed
  operator, all failure units), ``selection`` (the selected policy against the best fixed
  operator, or against the runner-up when the best fixed operator is selected) or
  ``published_vs_cross_validated`` (Steerable-Hard units: the published margin in hindsight next to
  the cross-validated comparison; adds ``published_margin``);
- ``population``: ``all_failures`` or ``steerable_hard``;
- ``policy``, ``versus``: the difference is ``policy - versus``;
- ``outcome``: ``better`` | ``worse`` | ``tie`` | ``too_few``;
- ``difference``: the paired difference (``mean``, ``ci_low``, ``ci_high``, ``n_units``,
  ``too_few``, ``method``, ``note``, ``outcome``);
- ``text``: one sentence, without the cell's name (the document's ``verdicts`` prefixes it).
"""

from __future__ import annotations

from lm_failtrace.analysis._config import AnalysisConfig
from lm_failtrace.analysis._honest import HeldOut, paired_difference
from lm_failtrace.formatting import format_number, format_signed

Held = dict[str, HeldOut] | None

RULE, FIXED = "paper_rule", "best_fixed"


def _missing(policy: str, versus: str, n: int) -> dict:
    """The comparison of a population too small to cross-fit (no held-out scores)."""
    return {
        "policy": policy,
        "versus": versus,
        "mean": None,
        "ci_low": None,
        "ci_high": None,
        "n_units": n,
        "too_few": True,
        "method": None,
        "note": f"too few units ({n}) to cross-fit",
        "outcome": "too_few",
    }


_FLIPPED = {"better": "worse", "worse": "better", "tie": "tie", "too_few": "too_few"}


def _reversed(diff: dict) -> dict:
    """``versus - policy`` from ``policy - versus``: the same comparison, read the other way."""

    def negated(value: float | None) -> float | None:
        return None if value is None else -value

    return {
        **diff,
        "policy": diff["versus"],
        "versus": diff["policy"],
        "mean": negated(diff["mean"]),
        "ci_low": negated(diff["ci_high"]),
        "ci_high": negated(diff["ci_low"]),
        "outcome": _FLIPPED[diff["outcome"]],
    }


class _Comparisons:
    """Paired differences of one section, each computed once (the selection's margins included;
    a comparison already made the other way round is read reversed, not recomputed)."""

    def __init__(self, section: dict, held: dict[str, Held], config: AnalysisConfig) -> None:
        self.held, self.config = held, config
        self.sizes = {
            "all_failures": section["n_units"],
            "steerable_hard": section["regimes"]["counts"]["steerable"],
        }
        self.cache: dict[tuple[str, str, str], dict] = {}
        for key in ("margin_over_runner_up", "margin_over_best_fixed"):
            margin = section["selection"].get(key)
            if margin is not None:
                self.cache["all_failures", margin["policy"], margin["versus"]] = margin

    def get(self, population: str, policy: str, versus: str) -> dict:
        key = (population, policy, versus)
        if (population, versus, policy) in self.cache and key not in self.cache:
            self.cache[key] = _reversed(self.cache[population, versus, policy])
        if key not in self.cache:
            held = self.held[population]
            self.cache[key] = (
                _missing(policy, versus, self.sizes[population])
                if held is None
                else paired_difference(held, policy, versus, self.config)
            )
        return self.cache[key]


def _difference_text(diff: dict, level: int, over: str = "") -> str:
    """``+0.012 [95% CI -0.004, +0.028]`` (``over`` follows the number), or why no interval."""
    if diff["mean"] is None:
        return f"not measured{over} ({diff['note']})"
    mean = format_signed(diff["mean"])
    if diff["ci_low"] is None:
        return f"{mean}{over} ({diff['note']})"
    bounds = f"[{level}% CI {format_signed(diff['ci_low'])}, {format_signed(diff['ci_high'])}]"
    return f"{mean}{over} {bounds}"


def _verdict(kind: str, population: str, diff: dict, text: str) -> dict:
    return {
        "kind": kind,
        "population": population,
        "policy": diff["policy"],
        "versus": diff["versus"],
        "outcome": diff["outcome"],
        "difference": diff,
        "text": text,
    }


_RULE_HEAD = {
    "better": "the paper's routing rule beats the cross-validated best fixed operator",
    "worse": "the paper's routing rule does NOT beat the cross-validated best fixed operator "
    "(it is worse)",
    "tie": "the paper's routing rule does NOT beat the cross-validated best fixed operator "
    "(a tie: not distinguishable)",
    "too_few": "the paper's routing rule is NOT shown to beat the cross-validated best fixed "
    "operator",
}

_RULE_TAIL = {
    "better": "",
    "worse": "; do not deploy it here",
    "tie": "; no evidence that it helps here, and the best fixed operator is simpler",
    "too_few": "",
}


def _over_budget(row: dict) -> str:
    """``; it spends 3.46x always-retry's tokens, over the budget`` for a policy over it."""
    if row.get("budget_status") != "over" or row.get("spend_vs_retry") is None:
        return ""
    return f"; it spends {row['spend_vs_retry']:.2f}x always-retry's tokens, over the budget"


def _rule_vs_fixed(section: dict, comparisons: _Comparisons, level: int) -> dict:
    diff = comparisons.get("all_failures", RULE, FIXED)
    honest = section["honest"]["all_failures"]
    rescue = spend = ""
    if RULE in honest and FIXED in honest:
        rescue = (
            f"rescue {format_number(honest[RULE]['mean'])} vs "
            f"{format_number(honest[FIXED]['mean'])}, "
        )
        spend = _over_budget(honest[RULE])
    outcome = diff["outcome"]
    text = (
        f"{_RULE_HEAD[outcome]} on held-out failures: {rescue}difference "
        f"{_difference_text(diff, level)}{_RULE_TAIL[outcome]}{spend}."
    )
    return _verdict("rule_vs_best_fixed", "all_failures", diff, text)


def _selection(section: dict, comparisons: _Comparisons, level: int) -> dict | None:
    selection = section["selection"]
    if "selected" not in selection:
        return None
    margin = selection.get("margin_over_best_fixed") or selection.get("margin_over_runner_up")
    if margin is None:
        return None
    diff = comparisons.get("all_failures", margin["policy"], margin["versus"])
    versus = diff["versus"]
    against = "the best fixed operator" if versus == FIXED else f"the runner-up {versus}"
    budget = section.get("budget") or {}
    at = ""
    if budget.get("applied"):
        at = (
            f" at the token budget ({budget['token_budget']:g}x always-retry, "
            f"{format_number(budget['budget_tokens'], 1)} tokens per failure unit)"
        )
    head = (
        f"best policy by cross-validated rescue{at} is {selection['selected']} "
        f"({format_number(selection['mean'])})"
    )
    amount = _difference_text(diff, level, over=f" over {against}")
    text = {
        "better": f"{head}: it beats {against} by {_difference_text(diff, level)}",
        "worse": f"{head}, yet per unit it trails {against}: {_difference_text(diff, level)}",
        "tie": f"{head}, {amount}: a tie, not distinguishable from {versus}",
        "too_few": f"{head}, {amount}: not distinguishable from {versus}",
    }[diff["outcome"]]
    return _verdict("selection", "all_failures", diff, text + ".")


_CROSS_VALIDATED = {
    "better": "the rule beats it",
    "worse": "the rule is worse",
    "tie": "a tie: not distinguishable",
    "too_few": "not distinguishable",
}


def _published(section: dict, comparisons: _Comparisons, level: int) -> dict | None:
    margin = section.get("published", {}).get("margin_over_best_fixed")
    if margin is None:
        return None
    diff = comparisons.get("steerable_hard", RULE, FIXED)
    text = (
        f"as published (best fixed operator chosen in hindsight) the rule is "
        f"{format_signed(margin)} over "
        "the best fixed operator on Steerable-Hard units; cross-validated on held-out "
        f"Steerable-Hard units it is {_difference_text(diff, level)}: "
        f"{_CROSS_VALIDATED[diff['outcome']]}."
    )
    verdict = _verdict("published_vs_cross_validated", "steerable_hard", diff, text)
    verdict["published_margin"] = margin
    return verdict


def section_verdicts(section: dict, held: dict[str, Held], config: AnalysisConfig) -> list[dict]:
    """The verdicts of one analysed section (see the module docstring).

    Args:
        section: the section so far: ``n_units``, ``regimes``, ``honest``, ``selection`` and
            (when known) ``published``.
        held: population -> held-out scores of every policy (None: too few units to cross-fit).
        config: the analysis configuration (policies, confidence, seed).
    """
    comparisons = _Comparisons(section, held, config)
    level = round(config.confidence * 100)
    out = []
    if RULE in config.policies and FIXED in config.policies:
        out.append(_rule_vs_fixed(section, comparisons, level))
    out.append(_selection(section, comparisons, level))
    if RULE in config.policies and FIXED in config.policies:
        out.append(_published(section, comparisons, level))
    return [v for v in out if v is not None]
