"""Plain-text tables of an analysis document, for the terminal (``failtrace analyze``)."""

from __future__ import annotations

from collections.abc import Sequence

from lm_failtrace.analysis import REGIMES
from lm_failtrace.formatting import TOO_FEW, format_number, format_signed


def text_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned first column, right-aligned others, widths fitted to the content."""
    cells = [[str(h) for h in headers], *[[format_number(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(
            v.ljust(w) if i == 0 else v.rjust(w)
            for i, (v, w) in enumerate(zip(row, widths, strict=True))
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def _bounds(row: dict, signed: bool = False) -> str:
    """`` [low, high]`` of an interval mapping, or why it has none (never a fake zero width)."""
    if row.get("ci_low") is None:
        return f" ({TOO_FEW})" if row.get("too_few", True) else ""
    if row["ci_low"] == row["ci_high"] and "same value" in (row.get("note") or ""):
        return " (all units equal)"
    if signed:
        return f" [{format_signed(row['ci_low'])}, {format_signed(row['ci_high'])}]"
    return f" [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"


def _interval(row: dict | None) -> str:
    if not row or row.get("mean") is None:
        return "n/a"
    return f"{row['mean']:.3f}{_bounds(row)}"


#: How a paired difference's outcome reads after its interval.
_OUTCOME_WORDS = {"better": "better", "worse": "worse", "tie": "a tie: not distinguishable"}


def _difference(margin: dict) -> str:
    """``+0.012 over best_fixed [-0.004, +0.028], a tie: not distinguishable``."""
    if margin.get("mean") is None:
        return f"over {margin['versus']}: n/a"
    word = _OUTCOME_WORDS.get(margin.get("outcome") or "")
    text = f"{format_signed(margin['mean'])} over {margin['versus']}{_bounds(margin, signed=True)}"
    return text + (f", {word}" if word else "")


def _selection(sel: dict) -> str:
    """The selected policy and its margins, each comparison printed once."""
    budget = sel.get("budget") or {}
    at = " at the token budget" if budget.get("applied") else ""
    text = f"Selected policy{at}: {sel['selected']} (held-out rescue {sel['mean']:.3f})"
    shown = set()
    for key in ("margin_over_runner_up", "margin_over_best_fixed"):
        margin = sel.get(key)
        if margin is not None and margin["versus"] not in shown:
            shown.add(margin["versus"])
            text += "; " + _difference(margin)
    excluded = budget.get("excluded_over_budget") or []
    if excluded:
        text += f"; not eligible, over the budget: {', '.join(excluded)}"
    if budget.get("note"):
        text += f" ({budget['note']})"
    return text


def _regime_mix(reg: dict) -> str:
    """``Regimes: steerable 67 (34.2% [27.9%, 41.1%]) | ...`` (Wilson intervals when given)."""
    intervals = reg.get("intervals") or {}
    parts, too_few = [], False
    for r in REGIMES:
        share = intervals.get(r) or {}
        bounds = ""
        if share.get("ci_low") is not None:
            bounds = f" [{share['ci_low']:.1%}, {share['ci_high']:.1%}]"
        too_few = too_few or bool(share.get("too_few"))
        parts.append(f"{r} {reg['counts'][r]} ({reg['fractions'][r]:.1%}{bounds})")
    return "Regimes: " + " | ".join(parts) + (" (too few units for intervals)" if too_few else "")


def _operators(section: dict) -> str:
    """Each operator alone over the section's failure units: mean rescue [interval], tokens."""
    operators = section.get("operators") or {}
    rows = [
        [name, _interval(row["rescue"]), row["rescue"].get("n_units"), row["tokens_per_trial"],
         row["tokens_per_rescue"]]
        for name, row in operators.items()
    ]  # fmt: skip
    headers = ["operator", "mean rescue", "units assayed", "tokens/trial", "tokens/rescue"]
    head = "Operators (each alone, over the failure units it was assayed on; tokens n/a: unknown)"
    return head + "\n" + text_table(headers, rows)


def _published(section: dict) -> str:
    pub = section["published"]
    if not pub["n_steerable"]:
        return "Published protocol: no steerable units."
    rows = [["routed (paper rule)", pub["n_steerable"], pub["rescue"]["routed"]]]
    rows += [
        [f"always {op}", pub["routes"][op], mean] for op, mean in pub["rescue"]["always"].items()
    ]
    head = (
        f"Published protocol (Steerable-Hard units, z within them; best fixed in hindsight; "
        f"{pub['n_fallback']} routed by fallback {pub['fallback']})"
    )
    if "note" in pub:
        head += f"\n  {pub['note']}"
    return head + "\n" + text_table(["policy", "units routed to it", "mean rescue"], rows)


#: How a policy's budget status reads in the honest table.
_STATUS_WORDS = {"within": "within", "at_budget": "at (n.s.)", "over": "OVER"}


def _spend(row: dict | None) -> list[object]:
    """Held-out tokens per failure unit [interval], x always-retry, and the budget status."""
    if not row or "tokens" not in row:
        return ["n/a", None, ""]
    tokens = row["tokens"]
    text = "n/a" if tokens.get("mean") is None else f"{tokens['mean']:.1f}"
    if tokens.get("ci_low") is not None:
        text += f" [{tokens['ci_low']:.1f}, {tokens['ci_high']:.1f}]"
    return [text, row.get("spend_vs_retry"), _STATUS_WORDS.get(row.get("budget_status"), "")]


def _honest(section: dict, config: dict) -> str:
    honest = section["honest"]
    pops = [p for p in ("steerable_hard", "all_failures") if "skipped" not in honest[p]]
    if not pops:
        return "Honest protocol: too few units."
    policies = list(honest[pops[-1]])
    everyone = honest.get("all_failures", {})
    costs = any(isinstance(r, dict) and "tokens" in r for r in everyone.values())
    headers = ["policy", *pops]
    if costs:
        headers += ["all_failures tokens/unit", "x retry", "budget"]
    rows = []
    for name in policies:
        row: list[object] = [name, *(_interval(honest[p].get(name)) for p in pops)]
        rows.append(row + (_spend(everyone.get(name)) if costs else []))
    head = (
        f"Honest protocol ({_repeats(honest, config)}x{config['n_folds']} cross-fitting, held-out "
        f"mean rescue [{round(config['confidence'] * 100)}% BCa bootstrap CI over units; none "
        "below 10 units])"
    )
    note = honest.get("note")
    budget = _budget(section.get("budget"))
    text = head + ("\n  " + note if note else "") + "\n" + text_table(headers, rows)
    return text + ("\n" + budget if budget else "")


def _repeats(honest: dict, config: dict) -> str:
    """Repeats done: the configured number, or fewer where cross-fitting stopped early."""
    done = honest.get("n_repeats") or {}
    counts = sorted({n for n in done.values() if n is not None})
    return str(config["n_repeats"]) if not counts else "/".join(map(str, counts))


def _budget(budget: dict | None) -> str:
    """The token budget in tokens, the rescue-versus-tokens frontier and who is over budget."""
    if not budget:
        return ""
    if not budget.get("applied"):
        return f"Token budget: not applied ({budget.get('note')})"
    text = (
        f"Token budget: {budget['token_budget']:g} x always-retry = "
        f"{budget['budget_tokens']:.1f} tokens per failure unit"
    )
    if budget.get("frontier"):
        text += f"; frontier (cheapest first): {' -> '.join(budget['frontier'])}"
    if budget.get("over_budget"):
        text += f"; over the budget: {', '.join(budget['over_budget'])}"
    return text


def _accuracy(label: str, acc: dict) -> str:
    if "skipped" in acc:
        return f"{label}: {acc['skipped']}"
    return (
        f"{label}: CV accuracy {acc['accuracy_mean']:.3f} ± {acc['accuracy_std']:.3f} "
        f"vs majority class {acc['majority_class']} {acc['majority_rate']:.3f}"
    )


def _clustering(cl: dict) -> str:
    if "skipped" in cl:
        return f"Clustering: {cl['skipped']}"
    agree = ", ".join(f"{k} {v:.3f}" for k, v in cl["agreement_ari"].items())
    return (
        f"Clustering ({cl['method']}, k={cl['k']} by {cl['criterion']}): stability ARI "
        f"{cl['stability_ari_mean']:.3f} ± {cl['stability_ari_std']:.3f} over "
        f"{cl['n_bootstrap']} bootstraps; ARI with {agree}"
    )


def _contingency(title: str, agreement: dict) -> str:
    """``labels x regimes (ARI 0.123):`` and the contingency table, indented."""
    table = agreement["contingency"]
    pairs = zip(table["labels"], table["counts"], strict=True)
    rows = [[label, *counts] for label, counts in pairs]
    body = text_table(["label", *table["columns"]], rows).replace("\n", "\n    ")
    return f"  labels x {title} (ARI {agreement['ari']:.3f}):\n    {body}"


def _labels(lab: dict) -> str:
    """Agreement with the known labels: contingency tables with ARI, and label recoverability."""
    head = f"Known labels (column {lab['column']}, {lab['n_units']} labelled units"
    head += f"; {lab['n_missing']} without a label left out)" if lab["n_missing"] else ")"
    if "skipped" in lab:
        return f"{head}: {lab['skipped']}"
    parts = [head, _contingency("regimes", lab["regime"])]
    for name, agreement in lab["routes"].items():
        which = " (selected policy)" if name == lab.get("selected_policy") else ""
        parts.append(_contingency(f"routes of {name}{which}", agreement))
    parts.append(_accuracy("  Label recoverability", lab["recoverability"]))
    return "\n".join(parts)


def _section(title: str, section: dict, config: dict) -> str:
    parts = [f"== {title} ({section['n_units']} failure units) ==", _regime_mix(section["regimes"])]
    if section.get("operators"):
        parts.append(_operators(section))
    parts += [_published(section), _honest(section, config)]
    if "selected" in section["selection"]:
        parts.append(_selection(section["selection"]))
    parts.append(_accuracy("Regime recoverability", section["recoverability"]))
    if "clustering" in section:
        parts.append(_clustering(section["clustering"]))
    if "model_identification" in section:
        parts.append(_accuracy("Model identification", section["model_identification"]))
    if "labels" in section:
        parts.append(_labels(section["labels"]))
    return "\n".join(parts)


def _columns(config: dict) -> str:
    """The columns analysed, and why any the table holds were left out (never silently)."""
    lines = [
        f"Features: {', '.join(config['features'])}",
        f"Operators: {', '.join(config['operators'])} (fallback {config['fallback']})",
    ]
    lines += [f"Note: {note}" for note in config.get("notes") or ()]
    return "\n".join(lines)


def analysis_text(document: dict) -> str:
    """The whole analysis document as readable text: columns, each cell, pooled, verdicts."""
    config = document["config"]
    blocks = [_columns(config)]
    blocks += [_section(f"cell {name}", sec, config) for name, sec in document["cells"].items()]
    if len(document["cells"]) > 1:
        blocks.append(_section("pooled over cells", document["pooled"], config))
    blocks.append("Verdicts:\n" + "\n".join(f"- {v}" for v in document["verdicts"]))
    return "\n\n".join(blocks)
