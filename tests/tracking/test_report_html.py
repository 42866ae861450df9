"""report.html's template: every string taken from data comes out escaped, in text and attributes.

The browser test in test_plugins_report.py checks the rendered page end to end; this one is fast
and puts hostile strings in every place data reaches the page (title, context, cell, policy and
operator names, regime keys, verdicts, figure captions in an attribute, problem ids, cell values).
"""

from __future__ import annotations

import pandas as pd
from _html import Page

from lm_failtrace.report.html import content_security_policy, render_report, sort_script
from lm_failtrace.report.plots import Figure

SCRIPT = "<script>alert(1)</script>"
QUOTES = "\"&'<>"
BREAKOUT = '" onerror="alert(1)'  # closes an attribute if quotes are not escaped
#: Tags the page is made of: nothing from data may add one.
PAGE_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "table", "thead",
    "tbody", "tr", "th", "td", "figure", "img", "figcaption", "nav", "ul", "li", "a", "strong",
    "section", "div", "dl", "dt", "dd", "code", "script",
}  # fmt: skip


def test_hostile_strings_in_data_come_out_escaped() -> None:
    cell = f"{SCRIPT}|{QUOTES}"
    interval = {"mean": 0.5, "ci_low": 0.25, "ci_high": 0.75, "n_units": 2}
    analysis = {
        "config": {"operators": ["retry", QUOTES], "features": ["answer_entropy"]},
        "cells": {
            cell: {
                "n_units": 2,
                "regimes": {"counts": {SCRIPT: 1, QUOTES: 1}},
                "honest": {QUOTES: {SCRIPT: interval}},
                "selection": {"selected": BREAKOUT, "mean": 0.5},
                "verdicts": [{"kind": "selection", "text": f"{SCRIPT} wins"}],
            }
        },
        "verdicts": [f"{cell}: {SCRIPT} wins", f"elsewhere: {BREAKOUT}"],
    }
    profiles = pd.DataFrame({
        "cell": [cell, cell], "problem_id": [SCRIPT, QUOTES], "answer_entropy": [0.5, 0.25],
        "note": [BREAKOUT, SCRIPT], "retry": [0.0, 0.5], QUOTES: [0.5, 0.5],
    })  # fmt: skip
    page = render_report(
        analysis,
        profiles,
        [Figure("f.png", f"{BREAKOUT} {QUOTES}", b"\x89PNG not really", "frontier", cell)],
        title=f"model {SCRIPT}",
        context={"model": SCRIPT, QUOTES: QUOTES},
        extra_columns=["note"],
    )
    for hostile in (SCRIPT, QUOTES, BREAKOUT):
        assert hostile not in page
    parsed = Page(page)
    assert parsed.tags <= PAGE_TAGS  # no tag opened by data
    # One script, the package's own, allowed by its hash and by nothing else.
    assert parsed.scripts == [sort_script()]
    meta = {value for tag, name, value in parsed.attributes if tag == "meta" and name == "content"}
    policy = content_security_policy([sort_script()])
    assert policy in meta and "unsafe-inline" not in policy.split("script-src")[1]
    image = {name: value for tag, name, value in parsed.attributes if tag == "img"}
    assert image.keys() == {"alt", "src"}  # the caption did not add an attribute
    assert image["alt"] == f"{BREAKOUT} {QUOTES}"
    assert image["src"].startswith("data:image/png;base64,")
    text = "".join(parsed.text)
    # The strings are all there, as text. SCRIPT: title + h1, context, the cell (contents and
    # heading), the regime table and the headline's regime clause, the policy table, the
    # section's verdict (the document's sentence about the cell is not repeated), the units
    # table (problem id, note).
    assert text.count(SCRIPT) == 2 + 1 + 2 + 2 + 1 + 1 + 2
    # QUOTES: context key and value, the cell (contents and heading), the regime table and
    # clause, the policy table's population, the operator table, the glossary, the units
    # table (problem id), the figure caption.
    assert text.count(QUOTES) == 2 + 2 + 2 + 1 + 1 + 1 + 1 + 1
    # BREAKOUT: the selected policy (facts, lead, routing note), the document's verdict about no
    # cell (listed on its own), the units table (note), the figure caption.
    assert text.count(BREAKOUT) == 3 + 1 + 1 + 1
