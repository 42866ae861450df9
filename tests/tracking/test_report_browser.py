"""report.html from a real analysis, in headless Chromium: under its own Content-Security-Policy,
with scripts on and off, with hostile model, task and problem names.

The data: cell ``sft4b|gsm8k`` of the paper's release (59 failure units, five operators), renamed
with hostile strings, plus ``<operator>_tokens`` columns (made up here, deterministically: the
paper's data has no token counts) so the cost columns and the cost frontier are drawn. The
policies are the two that read features, so the selected one has a routing map.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lm_failtrace.analysis import AnalysisConfig
from lm_failtrace.profiles import PAPER_OPERATORS, read_profiles
from lm_failtrace.tracking.landscape import compute_landscape

pytestmark = pytest.mark.slow

SCRIPT = (
    '<script>document.title="pwned";'
    'document.body.appendChild(document.createElement("b")).id="pwned"</script>'
)
IMG = "<img src=x onerror=alert(1)>"
#: A model name matplotlib's mathtext cannot parse (``\frac{`` between two ``$``).
MODEL = "sft$\\frac{$ " + IMG
TASK = "gsm8k " + SCRIPT
WIDTH = 1400

#: Runs first (in <head>): records CSP violations and errors; on load, sorts the units table by
#: clicking headers and writes what it saw into <pre id="probe">.
PROBE = """
window.seen = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.seen.push("csp " + e.violatedDirective + " " + e.blockedURI); });
window.addEventListener("error", function (e) {
  window.seen.push("error " + (e.message || (e.target && e.target.tagName))); }, true);
window.addEventListener("load", function () {
  const table = document.querySelector("table.sortable");
  const heads = Array.from(table.tHead.rows[0].cells);
  const column = (name) => heads.findIndex((h) => h.textContent.trim() === name);
  const values = (i) => Array.from(table.tBodies[0].rows, (r) => r.cells[i].textContent.trim());
  var state = {
    errors: window.seen, js: document.documentElement.classList.contains("js"),
    widths: Array.from(document.images).map(function (i) { return i.naturalWidth; }),
    scrollWidth: document.documentElement.scrollWidth, title: document.title,
    pwned: !!document.getElementById("pwned"), scripts: document.scripts.length,
    foreign: document.querySelectorAll("img:not([src^='data:image/png;base64,'])").length,
    onerror: document.querySelectorAll("[onerror]").length,
    original: values(column("problem_id"))};
  var i = column("retry");
  state.before = values(i);
  heads[i].click(); state.up = values(i); state.sortedUp = heads[i].getAttribute("aria-sort");
  heads[i].click(); state.down = values(i);
  var p = document.createElement("pre"); p.id = "probe"; p.textContent = JSON.stringify(state);
  document.body.appendChild(p);
});
"""


def _table(paper_csv: Path, out: Path):
    frame = pd.read_csv(paper_csv, dtype={"problem_id": str})
    frame = frame.loc[frame["cell"] == "sft4b|gsm8k"].reset_index(drop=True)
    frame["model"], frame["task"] = MODEL, TASK
    frame["cell"] = f"{MODEL}|{TASK}"
    frame["problem_id"] = [f"{SCRIPT if i % 2 else IMG}#{i}" for i in range(len(frame))]
    for k, op in enumerate(PAPER_OPERATORS):
        frame[f"{op}_tokens"] = 400.0 + 150 * k + 37 * (np.arange(len(frame)) % 7)
    frame.to_csv(out, index=False)
    return read_profiles(out)


def _chromium(chromium: str, page: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    """Load ``page`` headless at 1400 px; stdout is the DOM after load (a fresh profile each).

    (``--blink-settings=scriptEnabled=false`` would turn off ``--dump-dom`` too, which runs in
    the page: a page is loaded "with scripts off" by a policy that allows none, ``_no_scripts``.)
    """
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    return subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--enable-logging=stderr", "--v=0", f"--window-size={WIDTH},1000",
         f"--user-data-dir={profile}", "--virtual-time-budget=10000", *extra,
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def _with_probe(text: str) -> str:
    """The page with the probe added first in <head> and allowed by its hash (nothing else)."""
    digest = base64.b64encode(hashlib.sha256(PROBE.encode()).digest()).decode()
    text, n = re.subn(r"(script-src [^\"]*)", rf"\1 'sha256-{digest}'", text, count=1)
    assert n == 1, "the page's CSP allows no script"
    return text.replace("<head>", f"<head><script>{PROBE}</script>", 1)


def _no_scripts(text: str) -> str:
    """The page as a browser with scripts off runs it: its policy allows no script."""
    text, n = re.subn(r"script-src [^;\"]*", "script-src 'none'", text, count=1)
    assert n == 1
    return text


class _Units(HTMLParser):
    """Rows (cell texts) of the sortable table in a serialised DOM."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.depth, self.rows, self.cell = 0, [], None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table" and ("class", "sortable") in attrs:
            self.depth = 1
        elif self.depth and tag == "tr":
            self.rows.append([])
        elif self.depth and tag == "td":
            self.cell = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.depth = 0
        elif self.depth and tag == "td" and self.cell is not None:
            self.rows[-1].append(self.cell)
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell += data


def _numbers(values: list[str]) -> list[float]:
    return [float(v) if v != "n/a" else np.nan for v in values]


def test_report_in_chromium_answers_the_questions_and_stays_inert(
    chromium, paper_csv: Path, tmp_path: Path
) -> None:
    table = _table(paper_csv, tmp_path / "hostile.csv")
    config = AnalysisConfig(n_repeats=2, policies=("paper_rule", "ridge_router"))
    landscape = compute_landscape(
        table, config, title=f"Report {SCRIPT}", context={"model": IMG}, with_router=False
    )
    kinds = {name.split("_")[0] for name in landscape.figures}
    assert {"frontier", "features", "routing"} <= kinds
    page = tmp_path / "report.html"
    page.write_text(landscape.report_html)
    for hostile in (SCRIPT, IMG):
        assert hostile not in landscape.report_html
    assert "unsafe-inline" not in landscape.report_html.split("script-src")[1].split('"')[0]

    # Scripts on, under the page's own policy (plus the probe's hash).
    probed = tmp_path / "probed.html"
    probed.write_text(_with_probe(landscape.report_html))
    proc = _chromium(chromium, probed, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "CONSOLE" not in proc.stderr, proc.stderr  # no console message at all
    match = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert match, proc.stdout[-2000:]
    seen = json.loads(html.unescape(match.group(1)))
    assert seen["errors"] == []
    assert seen["js"] is True  # the page's script ran: its hash is right
    assert len(seen["widths"]) == len(landscape.figures) and all(w > 0 for w in seen["widths"])
    assert seen["scrollWidth"] <= WIDTH
    assert seen["title"] == f"Report {SCRIPT}"
    assert (seen["pwned"], seen["foreign"], seen["onerror"], seen["scripts"]) == (False, 0, 0, 2)
    # Sorting: the retry column ascending, then descending (n/a last both ways).
    up, down = _numbers(seen["up"]), _numbers(seen["down"])
    assert seen["sortedUp"] == "ascending"
    assert up == sorted(up) and down == sorted(down, reverse=True)
    assert _numbers(seen["before"]) != up  # the table was not already in order
    assert seen["original"] == list(table.frame["problem_id"])  # before any click
    # The headline: regimes with intervals, the policy, its gains, its cost, the verdicts.
    dom = html.unescape(proc.stdout)
    section = next(iter(landscape.analysis["cells"].values()))
    selected = section["selection"]["selected"]
    for text in (
        f"{len(table)} failure units: ",
        "% steerable",
        f"Recommended: {selected}",
        "Gain over retry",
        "Gain over the best fixed operator",
        "generated tokens per rescued trial",
        "95% CI",
        "Glossary",
        "steerable_hard",
    ):
        assert text in dom, text
    for verdict in section["verdicts"]:
        assert verdict["text"] in dom

    # Scripts off: the units table is complete, in the table's order; nothing is sorted.
    blocked = tmp_path / "no_scripts.html"
    blocked.write_text(_no_scripts(landscape.report_html))
    proc = _chromium(chromium, blocked, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "violates the following Content Security Policy directive" in proc.stderr
    rows = _Units(proc.stdout).rows
    units = [r for r in rows if r]
    assert [r[0] for r in units] == list(table.frame["problem_id"])
    assert 'class="js"' not in proc.stdout
