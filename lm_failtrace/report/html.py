"""The self-contained ``report.html``: what is fixable, by what, at what cost, for one model.

MLflow shows HTML artifacts in a sandboxed iframe where relative links do not resolve, so figures
are inlined as base64 PNG. The page is rendered from the package template
``templates/report.html.j2`` by a Jinja2 environment with autoescape on: everything taken from
data (cell names, problem ids, model names, numbers, figure captions) reaches the template as
plain text and is escaped there. The one thing marked safe is the package's own table-sorting
script (``templates/sort_table.js``, code, not data); the Content-Security-Policy allows exactly
that script, by its SHA-256 hash computed at render time, and nothing else. The page is complete
without it (sorting is the only thing it adds).

Per cell (and pooled over cells when there are several) the page states, in this order: a
headline (regime shares with intervals, the selected policy and its held-out gains, tokens per
rescue, the document's verdicts), each operator's rescue rate and cost (table and chart), each
feature against regime, the selected policy's routing map, the policies compared, and every
failure unit (a table sortable by any column). A glossary closes the page.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import Any, NamedTuple

import jinja2
import markupsafe
import numpy as np
import pandas as pd

from lm_failtrace.formatting import TOO_FEW, format_number
from lm_failtrace.profiles import ID_COLUMNS, TOKENS_SUFFIX
from lm_failtrace.profiles.build import PROFILE_COLUMNS
from lm_failtrace.report import summary
from lm_failtrace.report.glossary import glossary
from lm_failtrace.report.plots import Figure

#: Per-unit columns shown for failure units (those present in the table).
OUTCOME_COLUMNS: tuple[str, ...] = tuple(c for c in PROFILE_COLUMNS if c != "max_generated_tokens")

#: Columns holding counts: shown as integers.
COUNT_COLUMNS: frozenset[str] = frozenset(
    {"n_rollouts", "n_failed_rollouts", "max_generated_tokens"}
)

_TEMPLATE = "report.html.j2"
_SORT_SCRIPT = "sort_table.js"

#: The page's policy without scripts; :func:`content_security_policy` adds allowed script hashes.
_BASE_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


class _Cell(NamedTuple):
    """One table cell as the template sees it: its text, and whether to right-align it."""

    text: str
    numeric: bool


class _Table(NamedTuple):
    headers: list[str]
    rows: list[list[_Cell]]
    #: per column: every value is a number (the header sorts numerically)
    numeric: list[bool]


class _Figure(NamedTuple):
    caption: str
    src: str  # data URI


class _Section(NamedTuple):
    """Everything the template shows for one cell, or pooled over cells (all plain text)."""

    key: str  # HTML id (index based: data never reaches an id)
    title: str
    lead: str
    facts: list[tuple[str, str]]
    regimes: _Table
    verdicts: list[str]
    operators: _Table
    operators_note: str
    figures: dict[str, list[_Figure]]
    routing_note: str
    policies: _Table
    budget_note: str
    problems: _Table | None
    problems_note: str
    cells: _Table | None  # pooled only: cells by held-out rescue


@cache
def environment() -> jinja2.Environment:
    """The template environment: autoescape for every template, undefined names are errors.

    Shared by every page lm-failtrace renders (``templates/``; macros in ``macros.html.j2``).
    """
    return jinja2.Environment(
        loader=jinja2.PackageLoader("lm_failtrace.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def sort_script() -> str:
    """The table-sorting script (package file ``templates/sort_table.js``), exactly as inlined."""
    env = environment()
    assert env.loader is not None
    text = env.loader.get_source(env, _SORT_SCRIPT)[0]
    if "</" in text:
        raise ValueError(f"{_SORT_SCRIPT} must not contain '</' (it is inlined in <script>)")
    return text


def script_hash(script: str) -> str:
    """The CSP source allowing one inline script: ``'sha256-<base64 digest of its text>'``."""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def content_security_policy(scripts: Iterable[str] = ()) -> str:
    """No network, inline images and styles, and only the given inline scripts (by hash)."""
    hashes = [script_hash(s) for s in scripts]
    return _BASE_POLICY + ("; script-src " + " ".join(hashes) if hashes else "")


# --- formatting --------------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _cell(value: Any) -> _Cell:
    if _missing(value):
        return _Cell(format_number(None), True)
    numeric = isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))
    return _Cell(format_number(value), numeric)


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> _Table:
    """Cells from values: ints print as ints, floats with 3 decimals, missing as ``n/a``."""
    body = [[v if isinstance(v, _Cell) else _cell(v) for v in row] for row in rows]
    return _Table([str(h) for h in headers], body, _numeric_columns(len(headers), body))


def _numeric_columns(n: int, rows: list[list[_Cell]]) -> list[bool]:
    missing = format_number(None)
    return [
        any(r[i].text != missing for r in rows)
        and all(r[i].numeric or r[i].text == missing for r in rows)
        for i in range(n)
    ]


def _num(text: str) -> _Cell:
    """A preformatted number (right-aligned)."""
    return _Cell(text, True)


def _pct(value: float | None) -> str:
    return format_number(None) if value is None else f"{value * 100:.1f}%"


def _ci_label(confidence: float) -> str:
    return f"{round(confidence * 100)}% CI"


def _with_ci(
    row: Mapping[str, Any] | None, confidence: float, fmt: Callable[[float], str], after: str = ""
) -> str:
    """``fmt(mean) (95% CI fmt(low) to fmt(high))`` + ``after``; an absent interval says why."""
    if not row or row.get("mean") is None:
        return format_number(None)
    if row.get("ci_low") is None or row.get("ci_high") is None:
        return f"{fmt(row['mean'])} ({TOO_FEW})"
    low, high = fmt(row["ci_low"]), fmt(row["ci_high"])
    return f"{fmt(row['mean'])} ({_ci_label(confidence)} {low} to {high}){after}"


def _pct_ci(row: Mapping[str, Any] | None, confidence: float) -> str:
    """``65.9% (95% CI 59.8% to 72.1%)``."""
    return _with_ci(row, confidence, _pct)


def _pp(value: float) -> str:
    return f"{value * 100:+.1f} pp"


#: How a paired difference's outcome reads after its interval.
_OUTCOME = {"better": ": a gain", "worse": ": a loss", "tie": ": not distinguishable from 0"}


def _pp_ci(row: Mapping[str, Any], confidence: float) -> str:
    """``+6.6 pp (95% CI +2.1 pp to +11.0 pp): a gain``."""
    return _with_ci(row, confidence, _pp, _OUTCOME.get(row.get("outcome"), ""))


def _tokens(value: float | None) -> str:
    return format_number(None) if value is None else f"{value:,.0f}"


# --- headline ----------------------------------------------------------------------------------


def _regimes(section: Mapping[str, Any], config: Mapping[str, Any]) -> tuple[_Table, str]:
    """The regime table and the lead's clause: ``34.2% steerable, 60.2% resample, ...``."""
    confidence = config.get("confidence", summary.DEFAULT_CONFIDENCE)
    shares = summary.regime_shares(section.get("regimes") or {}, confidence)
    rows = [[name, _num(_pct_ci(share, confidence)), count] for name, count, share in shares]
    clause = ", ".join(f"{_pct(share.get('mean'))} {name}" for name, _, share in shares)
    table = _table(["regime", f"share of failure units ({_ci_label(confidence)})", "units"], rows)
    return table, clause


def _policy_words(name: str, best: str | None, config: Mapping[str, Any]) -> str:
    features = ", ".join(config.get("features") or ())
    if name == "best_fixed":
        if best is None:  # pooled: fitted within each cell
            return "best_fixed: in each cell, always the operator that rescues most there"
        return f"best_fixed: always {best}"
    if name == "retry":
        return "retry: always retry (no other policy rescued more on held-out units)"
    if name in ("paper_rule", "ridge_router", "gbm_router") and features:
        return f"{name}: routes each failure by {features}"
    return name


def _honest_row(section: Mapping[str, Any], policy: str) -> Mapping[str, Any]:
    return ((section.get("honest") or {}).get("all_failures") or {}).get(policy) or {}


def _gain(section: Mapping[str, Any], versus: str, confidence: float) -> str:
    """The selected policy's held-out gain over ``versus`` (``retry`` or ``best_fixed``)."""
    selection = section.get("selection") or {}
    if selection.get("selected") == versus:
        return f"none: {versus} is the selected policy"
    margin = summary.selection_margin(selection, versus)
    if margin is not None:
        return _pp_ci(margin, confidence)
    other = _honest_row(section, versus).get("mean")
    if other is None or selection.get("mean") is None:
        return format_number(None)
    return f"{_pp(selection['mean'] - other)} (difference of means; no paired interval)"


def _tokens_per_rescue(row: Mapping[str, Any]) -> float | None:
    per_1k = row.get("rescue_per_1k_tokens")
    return 1000.0 / per_1k if per_1k else None


#: What the page says where a cost would be.
_NO_TOKENS = "unknown: the table has no token counts (<operator>_tokens columns)"


def _cost(section: Mapping[str, Any], selected: str) -> str:
    chosen = _tokens_per_rescue(_honest_row(section, selected))
    if chosen is None:
        return _NO_TOKENS
    retry = _tokens_per_rescue(_honest_row(section, "retry"))
    text = f"{_tokens(chosen)} generated tokens per rescued trial"
    if retry is not None and selected != "retry":
        text += f" (retry: {_tokens(retry)})"
    return text


def _budget_fact(section: Mapping[str, Any], selected: str, confidence: float) -> str:
    """``1x always-retry (248 tokens per failure unit); the selected policy spends ...``."""
    budget = section.get("budget") or {}
    if not budget.get("applied"):
        return f"not applied ({budget.get('note', _NO_TOKENS)})"
    row = _honest_row(section, selected)
    text = (
        f"{budget['token_budget']:g}x always-retry ({_tokens(budget.get('budget_tokens'))} "
        "tokens per failure unit)"
    )
    if row.get("tokens"):
        spent = _with_ci(row["tokens"], confidence, _tokens)
        status = _STATUS.get(row.get("budget_status"), "")
        text += f"; {selected} spends {spent} per failure unit held out: {status}"
    return text


def _facts(
    section: Mapping[str, Any], config: Mapping[str, Any], best: str | None
) -> tuple[list[tuple[str, str]], str]:
    """Key facts of the selected policy, and the lead's clause about it."""
    selection = section.get("selection") or {}
    if "selected" not in selection:
        why = selection.get("skipped", "no policy was compared")
        return [("Selected policy", f"none ({why})")], f"No policy selected ({why})."
    confidence = config.get("confidence", summary.DEFAULT_CONFIDENCE)
    name = str(selection["selected"])
    held = _honest_row(section, name) or {"mean": selection.get("mean")}
    runner = selection.get("margin_over_runner_up")
    facts = [
        ("Selected policy", _policy_words(name, best, config)),
        ("Held-out rescue, all failure units", _pct_ci(held, confidence)),
        ("Gain over retry", _gain(section, "retry", confidence)),
        ("Gain over the best fixed operator", _gain(section, "best_fixed", confidence)),
    ]
    if runner is not None and runner.get("versus") not in ("retry", "best_fixed"):
        facts.append((f"Gain over the runner-up ({runner['versus']})", _pp_ci(runner, confidence)))
    facts.append(("Tokens per rescue", _cost(section, name)))
    facts.append(("Token budget", _budget_fact(section, name, confidence)))
    oracle = _honest_row(section, "oracle")
    if oracle:
        facts.append(("Ceiling (oracle, not deployable)", _pct_ci(oracle, confidence)))
    lead = (
        f"Recommended: {_policy_words(name, best, config)}, rescuing "
        f"{_pct(held.get('mean'))} of held-out failures."
    )
    return facts, lead


def _verdict_text(item: Any) -> str:
    if isinstance(item, Mapping):
        for key in ("text", "sentence", "message", "verdict"):
            if isinstance(item.get(key), str):
                return item[key]
        return "; ".join(f"{k}: {format_number(v)}" for k, v in item.items())
    return str(item)


def _verdicts(section: Mapping[str, Any], name: str, sentences: list[str]) -> list[str]:
    """The section's verdicts: its own (structured) ones, else the document's sentences about it.

    The document's sentences (what the CLI prints) are ``"<name>: <verdict text>"``; those this
    section shows are taken out of ``sentences``, so the page lists each sentence once.
    """
    own = section.get("verdicts") or []
    if isinstance(own, Mapping):
        own = list(own.values())
    texts = [_verdict_text(v) for v in own]
    prefix = f"{name}: "
    for sentence in list(sentences):
        if sentence.startswith(prefix) and (not texts or sentence[len(prefix) :] in texts):
            sentences.remove(sentence)
            if not own:
                texts.append(sentence[len(prefix) :])
    return texts


# --- operators and policies --------------------------------------------------------------------


def _operators(profiles: pd.DataFrame, config: Mapping[str, Any]) -> tuple[_Table, str | None, str]:
    """Each operator's rescue and cost; the best operator; a note on what the table lacks."""
    confidence = config.get("confidence", summary.DEFAULT_CONFIDENCE)
    operators = list(config.get("operators") or ())
    rows = summary.operator_summaries(
        profiles, operators, confidence, config.get("random_state", 0)
    )
    best = summary.best_operator(rows)
    costs = any(r.tokens_per_trial is not None for r in rows)
    headers = ["operator", f"rescue rate ({_ci_label(confidence)})", "units assayed"]
    headers += ["tokens per trial", "tokens per rescue"] if costs else []
    table = _table(
        [*headers, ""],
        [
            [r.operator, _num(_pct_ci(r.rescue, confidence)), r.rescue.get("n_units"),
             *([_num(_tokens(r.tokens_per_trial)), _num(_tokens(r.tokens_per_rescue))]
               if costs else []),
             "highest rescue" if r.operator == best else ""]
            for r in rows
        ],
    )  # fmt: skip
    note = "" if costs or not rows else f"Costs {_NO_TOKENS}."
    return table, best, note


#: How a policy's budget status reads in the policies table.
_STATUS = {
    "within": "within",
    "at_budget": "at the budget (not distinguishable)",
    "over": "over: not eligible",
}


def _spend_cells(row: Mapping[str, Any], confidence: float) -> list[_Cell]:
    """Held-out tokens per failure unit (interval), x always-retry, and the budget status."""
    tokens = row.get("tokens") or {}
    ratio = row.get("spend_vs_retry")
    return [
        _num(_with_ci(tokens, confidence, _tokens)),
        _num(format_number(None) if ratio is None else f"{ratio:.2f}x"),
        _Cell(_STATUS.get(row.get("budget_status"), format_number(None)), False),
    ]


def _policies(section: Mapping[str, Any], config: Mapping[str, Any]) -> _Table:
    """Every policy on both populations, held out, with its spend and tokens per rescue."""
    confidence = config.get("confidence", summary.DEFAULT_CONFIDENCE)
    honest = section.get("honest") or {}
    pops = [p for p in ("all_failures", "steerable_hard") if isinstance(honest.get(p), Mapping)]
    pops += [
        p for p in honest if p not in pops and p != "n_repeats" and isinstance(honest[p], Mapping)
    ]  # populations; n_repeats is how many repeats each had
    names = list(dict.fromkeys(n for p in pops for n in honest[p] if n != "skipped"))
    selected = (section.get("selection") or {}).get("selected")
    everyone = honest.get("all_failures") or {}
    costs = any(isinstance(r, Mapping) and "tokens" in r for r in everyone.values())
    rows = []
    for name in names:
        cells = [_num(_policy_cell(honest[p], name, confidence)) for p in pops]
        row = everyone.get(name) or {}
        cost = _tokens_per_rescue(row)
        label = f"{name} (selected)" if name == selected else name
        spend = _spend_cells(row, confidence) if costs else []
        rows.append([label, *cells, *spend, cost])
    headers = ["policy", *(f"{p}: held-out rescue" for p in pops)]
    if costs:
        headers += [
            f"all_failures: held-out tokens per failure unit ({_ci_label(confidence)})",
            "x always-retry",
            "token budget",
        ]
    if any(row[-1] is not None for row in rows):
        shown = [[*r[:-1], _num(_tokens(r[-1]))] for r in rows]
        return _table([*headers, "tokens per rescue"], shown)
    return _table(headers, [r[:-1] for r in rows])


def _budget_note(section: Mapping[str, Any]) -> str:
    """What the token budget is in tokens, which policies are over it, the frontier."""
    budget = section.get("budget") or {}
    if not budget:
        return ""
    if not budget.get("applied"):
        return f"Token budget not applied: {budget.get('note')}."
    text = (
        f"Token budget: {budget['token_budget']:g}x always-retry's mean tokens, "
        f"{_tokens(budget.get('budget_tokens'))} generated tokens per failure unit. A policy is "
        "over it when the interval of its paired per-unit overspend lies above 0; selection "
        "passes over such policies."
    )
    if budget.get("frontier"):
        text += (
            " Rescue-versus-tokens frontier (no policy rescues more for no more tokens), "
            f"cheapest first: {', '.join(budget['frontier'])}."
        )
    return text


def _policy_cell(population: Mapping[str, Any], name: str, confidence: float) -> str:
    if "skipped" in population:
        return f"skipped ({population['skipped']})"
    row = population.get(name)
    return _pct_ci(row, confidence) if isinstance(row, Mapping) else format_number(row)


def _worst_cells(cells: Mapping[str, Any], config: Mapping[str, Any]) -> _Table:
    """Cells ranked by the held-out rescue of their selected policy, lowest first."""
    rows = []
    for cell, body in cells.items():
        selection = body.get("selection") or {}
        rows.append([cell, body.get("n_units"), selection.get("selected"), selection.get("mean")])
    rows.sort(key=lambda r: (r[3] is None, r[3] if r[3] is not None else 0.0))
    confidence = config.get("confidence", summary.DEFAULT_CONFIDENCE)
    shown = [
        [c, n, s, _num(_pct_ci(_honest_row(cells[c], s) if s else {}, confidence))]
        for c, n, s, _ in rows
    ]
    return _table(["cell", "failure units", "selected policy", "held-out rescue"], shown)


# --- failure units -----------------------------------------------------------------------------


def _problem_columns(frame: pd.DataFrame, extra: Sequence[str]) -> list[str]:
    """Each column once: problem id, regime, bookkeeping, outcome, features, operators."""
    wanted = ["problem_id", "regime", *OUTCOME_COLUMNS, *extra]
    hidden = {c for c in ID_COLUMNS if c != "problem_id"}
    return [
        c
        for c in dict.fromkeys(wanted)
        if c in frame.columns and c not in hidden and not c.endswith(TOKENS_SUFFIX)
    ]


def _as_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Count columns as integers (a CSV round trip or a gap makes them floats)."""
    out = frame.copy()
    for column in out.columns:
        if column not in COUNT_COLUMNS or not pd.api.types.is_numeric_dtype(out[column]):
            continue
        values = pd.to_numeric(out[column], errors="coerce")
        finite = values.dropna()
        if (finite == finite.round()).all():
            out[column] = values.astype("Int64")
    return out


def _problems(
    frame: pd.DataFrame, config: Mapping[str, Any], extra: Sequence[str], size: int, seed: int
) -> tuple[_Table, str]:
    """Every failure unit of one cell (a random ``size`` of them when there are more)."""
    frame = frame.reset_index(drop=True)
    regimes = summary.regime_labels(frame, config)
    if regimes is not None:
        frame = frame.assign(regime=regimes)
    note = f"All {len(frame)} failure units of the cell."
    if len(frame) > size:
        note = f"{size} of the cell's {len(frame)} failure units, drawn at random."
        frame = frame.sample(n=size, random_state=seed).sort_index()
    shown = _problem_columns(frame, extra)
    frame = _as_counts(frame.loc[:, shown])
    rows = [[None if _missing(v) else v for v in row] for row in frame.itertuples(index=False)]
    return _table(shown, rows), note


# --- sections ----------------------------------------------------------------------------------


def _figures(figures: Iterable[Figure]) -> dict[str, list[_Figure]]:
    out: dict[str, list[_Figure]] = {}
    for figure in figures:
        src = "data:image/png;base64," + base64.b64encode(figure.png).decode("ascii")
        out.setdefault(figure.kind, []).append(_Figure(str(figure.caption), src))
    return out


def _routing_note(section: Mapping[str, Any], has_map: bool, best: str | None) -> str:
    selection = section.get("selection") or {}
    name = selection.get("selected")
    if has_map:
        return (
            f"Where {name} sends each failure unit: one panel per pair of the features it reads "
            "(z-scores within the cell), one colour per operator."
        )
    if name is None:
        return "No routing map: no policy was selected."
    target = f" ({best})" if name == "best_fixed" and best else ""
    return (
        f"No routing map: the selected policy, {name}, sends every failure unit to the same "
        f"operator{target} and reads no feature."
    )


class _Inputs(NamedTuple):
    config: Mapping[str, Any]
    figures: Sequence[Figure]
    extra_columns: Sequence[str]
    sample_size: int
    random_state: int
    #: the document's verdict sentences no section has shown yet
    sentences: list[str]


def _section(
    key: str, title: str, section: Mapping[str, Any], frame: pd.DataFrame, inputs: _Inputs,
    cell: str | None,
) -> _Section:  # fmt: skip
    config = inputs.config
    operators, best, operators_note = _operators(frame, config)
    regimes, shares = _regimes(section, config)
    facts, policy_lead = _facts(section, config, best if cell is not None else None)
    figures = _figures(f for f in inputs.figures if f.section == cell)
    problems, problems_note = None, ""
    if cell is not None:
        problems, problems_note = _problems(
            frame, config, inputs.extra_columns, inputs.sample_size, inputs.random_state
        )
    n_units = section.get("n_units", len(frame))
    return _Section(
        key=key,
        title=title,
        lead=f"{format_number(n_units)} failure units: {shares or 'no regimes'}. {policy_lead}",
        facts=facts,
        regimes=regimes,
        verdicts=_verdicts(section, "pooled" if cell is None else cell, inputs.sentences),
        operators=operators,
        operators_note=operators_note,
        figures=figures,
        routing_note=_routing_note(section, "routing_map" in figures, best),
        policies=_policies(section, config),
        budget_note=_budget_note(section),
        problems=problems,
        problems_note=problems_note,
        cells=None,
    )


def _sections(analysis: Mapping[str, Any], profiles: pd.DataFrame, inputs: _Inputs):
    cells = analysis.get("cells") or {}
    has_cell = "cell" in profiles.columns
    out = []
    for i, (cell, body) in enumerate(cells.items()):
        rows = profiles.loc[profiles["cell"] == cell] if has_cell else profiles.iloc[0:0]
        out.append(_section(f"cell-{i}", f"Cell {cell}", body, rows, inputs, cell))
    pooled = analysis.get("pooled")
    if len(cells) > 1 and isinstance(pooled, Mapping):
        section = _section("pooled", f"Pooled over {len(cells)} cells", pooled, profiles, inputs,
                           None)  # fmt: skip
        out.append(section._replace(cells=_worst_cells(cells, inputs.config)))
    return out


def render_report(
    analysis: Mapping[str, Any],
    profiles: pd.DataFrame,
    figures: Sequence[Figure],
    *,
    title: str,
    context: Mapping[str, Any] | None = None,
    extra_columns: Sequence[str] = (),
    sample_size: int = 500,
    random_state: int = 0,
) -> str:
    """The report as one HTML string.

    Args:
        analysis: the document returned by :func:`lm_failtrace.analysis.analyze`.
        profiles: the profile table it was computed from (operators' rescue and cost, the units).
        figures: :func:`lm_failtrace.report.plots.report_figures`, inlined as data URIs.
        title: page title and heading (escaped).
        context: key -> value shown at the top (model, version, run, source; escaped).
        extra_columns: further per-unit columns of the units table (features, rescue rates).
        sample_size: failure units listed per cell; a cell with more lists a random sample of
            this many, drawn with ``random_state``.
    """
    config = analysis.get("config") or {}
    sentences = [str(v) for v in analysis.get("verdicts") or ()]
    inputs = _Inputs(config, list(figures), extra_columns, sample_size, random_state, sentences)
    sections = _sections(analysis, profiles, inputs)  # takes the sentences it shows
    script = sort_script()
    return (
        environment()
        .get_template(_TEMPLATE)
        .render(
            title=str(title),
            csp=content_security_policy([script]),
            script=markupsafe.Markup(script),  # package code, never data
            context=[(str(k), format_number(v)) for k, v in (context or {}).items()],
            verdicts=inputs.sentences,
            sections=sections,
            glossary=glossary(config),
        )
    )
