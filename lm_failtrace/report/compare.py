"""The comparison of two failure landscapes as terminal tables and as ``compare.html``.

Both read the document of :func:`lm_failtrace.analysis.compare` and build the same tables (one
list of rows per table), so the page and the terminal always show the same numbers. The page is
rendered from ``templates/compare.html.j2`` by the report's Jinja2 environment and its shared
table macro (autoescape on, nothing marked safe, no script): every string from data reaches it
as plain text. Each table sits in its own
horizontally scrolling box, so a long problem id or model name never widens the page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lm_failtrace.analysis import REGIMES
from lm_failtrace.formatting import MISSING, TOO_FEW, format_interval, format_number
from lm_failtrace.report.html import environment
from lm_failtrace.report.tables import text_table

_TEMPLATE = "compare.html.j2"

#: Row and column of units in one table only (a profile table holds failure units only).
STOPPED, STARTED = "stopped failing", "started failing"


@dataclass(frozen=True)
class Table:
    """One table of the comparison: a title, an explanation, headers and rows of values."""

    title: str
    note: str
    headers: list[str]
    rows: list[list[Any]]
    #: shown in the terminal too (a list of problem ids is left to --json and the page)
    terminal: bool = True


def ci(row: Mapping[str, Any] | None) -> str:
    """``[0.275, 0.409]``, or ``too few units`` when the interval could not be computed."""
    if not row or row.get("ci_low") is None or row.get("ci_high") is None:
        return TOO_FEW
    return f"[{format_number(row['ci_low'])}, {format_number(row['ci_high'])}]"


def _signed(value: Any) -> str:
    return "n/a" if value is None else f"{value:+.3f}"


def _p_value(value: float | None) -> str:
    """``0.0259``; ``<0.0001`` below that (four decimals would print 0.0000); ``n/a``."""
    if value is None:
        return "n/a"
    return "<0.0001" if value < 1e-4 else f"{value:.4f}"


def _change(old: Any, new: Any) -> str:
    return "n/a" if old is None or new is None else _signed(new - old)


def _names(doc: Mapping[str, Any]) -> tuple[str, str]:
    """``old (v3)``, ``new (v4)``; plain ``old``, ``new`` when the sides have no other label."""
    return tuple(  # type: ignore[return-value]
        side if doc[side]["label"] == side else f"{side} ({doc[side]['label']})"
        for side in ("old", "new")
    )


def _shares(section: Mapping[str, Any], doc: Mapping[str, Any], level: str) -> Table:
    old, new = section["old"]["regimes"], section["new"]["regimes"]
    a, b = _names(doc)
    rows = [
        [
            r,
            old[r]["count"],
            format_interval(old[r]),
            new[r]["count"],
            format_interval(new[r]),
            _change(old[r]["mean"], new[r]["mean"]),
        ]
        for r in REGIMES
    ]
    rows.append(["failure units", section["old"]["n_units"], "", section["new"]["n_units"], "", ""])
    return Table(
        "Regime shares",
        f"share of the failure units in each regime [{level} CI]",
        ["regime", f"{a} units", f"{a} share", f"{b} units", f"{b} share", "change"],
        rows,
    )


def _pass_at_k(section: Mapping[str, Any], doc: Mapping[str, Any]) -> Table | None:
    old, new = section["old"].get("pass_at_k") or {}, section["new"].get("pass_at_k") or {}
    names = list(dict.fromkeys([*old, *new]))
    if not names:
        return None
    rows = [
        [
            k,
            old.get(k),
            new.get(k),
            _change(old.get(k), new.get(k)),
        ]
        for k in names
    ]
    return Table(
        "pass@k",
        "from the logged lm-eval run (n/a: not logged for that side)",
        ["metric", *_names(doc), "change"],
        rows,
    )


def _rescue(section: Mapping[str, Any], doc: Mapping[str, Any], level: str) -> Table:
    old, new = section["old"]["rescue"], section["new"]["rescue"]
    rows = [[op, format_interval(old.get(op)), format_interval(new.get(op))] for op in old]
    selections = [section[side].get("selection") or {} for side in ("old", "new")]
    rows.append(["selected policy", *(_selected(s) for s in selections)])
    if any("logged" in s for s in selections):
        rows.append(["selected policy (as logged)", *(s.get("logged", "n/a") for s in selections)])
    return Table(
        "Mean rescue per operator",
        f"mean rescue rate over each side's failure units [{level} CI]; the selected policy is "
        "the honest protocol's (cross-validated, held-out rescue)",
        ["operator", *_names(doc)],
        rows,
    )


def _selected(selection: Mapping[str, Any]) -> str:
    if "selected" not in selection:
        return str(selection.get("skipped", "n/a"))
    return f"{selection['selected']} ({format_number(selection.get('mean'))})"


def _transitions(section: Mapping[str, Any], doc: Mapping[str, Any]) -> Table:
    moves = section["transitions"]
    a, b = _names(doc)
    rows = []
    for r in REGIMES:
        row = [moves["counts"][r][c] for c in REGIMES]
        rows.append([r, *row, moves["stopped_failing"][r], sum(row) + moves["stopped_failing"][r]])
    started = [moves["started_failing"][c] for c in REGIMES]
    rows.append([STARTED, *started, "", sum(started)])
    totals = [
        sum(moves["counts"][r][c] for r in REGIMES) + moves["started_failing"][c] for c in REGIMES
    ]
    rows.append(["total", *totals, moves["n_stopped_failing"], ""])
    return Table(
        "Regime transitions",
        f"{moves['n_paired']} problems fail in both (paired by task and problem id): "
        f"{moves['moved']} moved between regimes, {moves['stayed']} stayed; "
        f"{moves['n_stopped_failing']} stopped failing, {moves['n_started_failing']} started "
        f"failing. Rows: {a}'s regime; columns: {b}'s.",
        [f"{a} \\ {b}", *REGIMES, STOPPED, "total"],
        rows,
    )


def _paired(section: Mapping[str, Any], level: str) -> Table:
    n = section["transitions"]["n_paired"]
    rows = [
        [
            op,
            row["n_units"],
            _signed(row["mean"]),
            ci(row) if row["mean"] is not None else "n/a",
            row["improved"],
            row["worsened"],
            row["unchanged"],
            _p_value(row["p_value"]),
        ]
        for op, row in section["paired_rescue"].items()
    ]
    return Table(
        "Paired change in rescue (new - old)",
        f"new - old rescue on the {n} paired problems where both sides assayed the operator: "
        f"mean change [{level} CI, within -1 to 1]; sign p: two-sided exact sign test on the "
        "non-zero changes",
        [
            "operator",
            "problems",
            "mean change",
            "CI",
            "improved",
            "worsened",
            "unchanged",
            "sign p",
        ],
        rows,
    )


def _moved(section: Mapping[str, Any]) -> Table:
    moves = section["transitions"]
    listed = moves["moved_problems"]
    shown = f"the first {len(listed)} by problem id" if len(listed) < moves["moved"] else "all"
    return Table(
        "Paired problems that moved",
        f"{moves['moved']} problems changed regime; {shown}",
        ["problem id", "old regime", "new regime"],
        [[m["problem_id"], m["old"], m["new"]] for m in listed],
        terminal=False,
    )


def task_tables(section: Mapping[str, Any], doc: Mapping[str, Any]) -> list[Table]:
    """The tables of one task's comparison, in the order they are shown."""
    level = f"{round(doc['config']['confidence'] * 100)}%"
    tables = [_shares(section, doc, level), _pass_at_k(section, doc), _rescue(section, doc, level)]
    tables += [_transitions(section, doc), _paired(section, level), _moved(section)]
    return [t for t in tables if t is not None]


#: How the facts of a side are named in the output (other keys as they are).
_FACTS = {"n_units": "failure units", "registered_model": "registered model", "run_id": "run"}


def _sides(doc: Mapping[str, Any]) -> list[list[Any]]:
    """Side-by-side facts of both sides (label, model, source, units, tasks, registry details)."""
    keys = list(dict.fromkeys([*doc["old"], *doc["new"]]))
    return [
        [_FACTS.get(key, key), *(_fact(doc[side].get(key)) for side in ("old", "new"))]
        for key in keys
    ]


def _fact(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return "" if value is None else value


def title(doc: Mapping[str, Any]) -> str:
    """The comparison's headline: ``my-sft: v3 -> v4`` or ``A.parquet -> B.parquet``."""
    head = f"{doc['registered_model']}: " if doc.get("registered_model") else ""
    return f"Failure landscape comparison: {head}{doc['old']['label']} -> {doc['new']['label']}"


def compare_text(doc: Mapping[str, Any]) -> str:
    """The comparison as plain-text tables for the terminal."""
    blocks = [title(doc), text_table(["", "old", "new"], _sides(doc))]
    blocks += [f"Note: {note}" for note in doc.get("notes") or ()]
    for task, section in doc["tasks"].items():
        parts = [f"== task {task} =="]
        for table in filter(lambda t: t.terminal, task_tables(section, doc)):
            body = text_table(table.headers, table.rows) if table.rows else "(none)"
            parts.append(f"{table.title}: {table.note}\n{body}")
        blocks.append("\n\n".join(parts))
    return "\n\n".join(blocks)


@dataclass(frozen=True)
class _Cell:
    """A table cell as the template sees it: its text, and whether to right-align it."""

    text: str
    numeric: bool


#: Text that reads as a number (an interval, a signed change): right-aligned like numbers.
_NUMBER_LIKE = re.compile(r"^[+<-]?(\d|\[)")


def _cell(value: Any) -> _Cell:
    text = format_number(value)
    numeric = not isinstance(value, bool) and (
        isinstance(value, (int, float)) or bool(_NUMBER_LIKE.match(text))
    )
    return _Cell(text, numeric)


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """A table as the shared ``macros.html.j2`` takes it: headers, cells, numeric columns."""
    cells = [[_cell(v) for v in row] for row in rows]
    numeric = []
    for j in range(len(headers)):
        filled = [r[j] for r in cells if r[j].text not in ("", MISSING)]
        numeric.append(bool(filled) and all(c.numeric for c in filled))
    return {"headers": [str(h) for h in headers], "rows": cells, "numeric": numeric}


def render_compare(doc: Mapping[str, Any]) -> str:
    """``compare.html``: one self-contained page (no scripts, no network), everything escaped."""
    tasks = [
        {
            "name": str(task),
            "tables": [
                {"title": t.title, "note": t.note, **_html_table(t.headers, t.rows)}
                for t in task_tables(section, doc)
            ],
        }
        for task, section in doc["tasks"].items()
    ]
    methods = [[str(k), str(v)] for k, v in (doc.get("methods") or {}).items()]
    return (
        environment()
        .get_template(_TEMPLATE)
        .render(
            title=title(doc),
            sides=_html_table(["", "old", "new"], _sides(doc)),
            notes=[str(n) for n in doc.get("notes") or ()],
            tasks=tasks,
            methods=methods,
        )
    )
