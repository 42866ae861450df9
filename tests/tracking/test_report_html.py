"""report.html's template: every string taken from data comes out escaped, in text and attributes.

The browser test in test_plugins_report.py checks the rendered page end to end; this one is fast
and puts hostile strings in every place data reaches the page (title, context, cell and policy
names, regime keys, figure captions in an attribute, problem ids, cell values).
"""

from __future__ import annotations

from html.parser import HTMLParser

import pandas as pd

from lm_failtrace.report.html import render_report

SCRIPT = "<script>alert(1)</script>"
QUOTES = "\"&'<>"
BREAKOUT = '" onerror="alert(1)'  # closes an attribute if quotes are not escaped
#: Tags the page is made of: nothing from data may add one.
PAGE_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "table", "thead",
    "tbody", "tr", "th", "td", "figure", "img", "figcaption",
}  # fmt: skip


class _Page(HTMLParser):
    """Tags, attribute values and text of a page, entities decoded."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str, str | None]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes += [(tag, name, value) for name, value in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_hostile_strings_in_data_come_out_escaped() -> None:
    cell = f"{SCRIPT}|{QUOTES}"
    interval = {"mean": 0.5, "ci_low": 0.25, "ci_high": 0.75, "n_units": 2}
    analysis = {
        "cells": {
            cell: {
                "n_units": 2,
                "regimes": {"counts": {SCRIPT: 1, QUOTES: 1}},
                "honest": {QUOTES: {SCRIPT: interval}},
                "selection": {"selected": BREAKOUT, "mean": 0.5},
            }
        }
    }
    profiles = pd.DataFrame({
        "cell": [cell, cell], "problem_id": [SCRIPT, QUOTES], "answer_entropy": [0.5, 0.25],
        "note": [BREAKOUT, SCRIPT],
    })  # fmt: skip
    page = render_report(
        analysis,
        profiles,
        {f"{BREAKOUT} {QUOTES}": b"\x89PNG not really"},
        title=f"model {SCRIPT}",
        context={"model": SCRIPT, QUOTES: QUOTES},
        extra_columns=["note"],
    )
    for hostile in (SCRIPT, QUOTES, BREAKOUT):
        assert hostile not in page
    parsed = _Page(page)
    assert parsed.tags <= PAGE_TAGS  # no <script>, no tag opened by data
    image = {name: value for tag, name, value in parsed.attributes if tag == "img"}
    assert image.keys() == {"alt", "src"}  # the caption did not add an attribute
    assert image["alt"] == f"{BREAKOUT} {QUOTES}"
    assert image["src"].startswith("data:image/png;base64,")
    text = "".join(parsed.text)
    # The strings are all there, as text: title + h1, context, regime and policy tables,
    # worst cells, the sample (cell twice, problem id, note) and the figure caption.
    assert text.count(SCRIPT) == 2 + 1 + 2 + 2 + 1 + 2 + 1 + 1
    assert text.count(QUOTES) == 2 + 2 + 2 + 1 + 2 + 1 + 1
    assert text.count(BREAKOUT) == 1 + 1 + 1
