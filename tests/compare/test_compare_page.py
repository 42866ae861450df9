"""compare.html in a real browser at 1400 px: no page overflow, wide tables scroll in boxes."""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path

from compare_tables import NEW_RATES, OLD_RATES, profile_frame

from lm_failtrace.analysis import compare
from lm_failtrace.report.compare import render_compare

SCRIPT = "<script>document.body.id='pwned'</script>"

#: Records the page's and each box's widths, and whether data ran as script, into the DOM.
PROBE = (
    "<script>window.addEventListener('load',()=>{const d=document.documentElement;"
    "const p=document.createElement('pre');p.id='probe';p.textContent=JSON.stringify({"
    "page:[d.scrollWidth,d.clientWidth],boxes:[...document.querySelectorAll('.box')].map(b=>"
    "[b.scrollWidth,b.clientWidth,getComputedStyle(b).overflowX]),pwned:document.body.id==='pwned'"
    "});document.body.appendChild(p)});</script>"
)


def _probe(chromium: str, page: Path, tmp_path: Path) -> dict:
    # Without the page's CSP the probe can run; only escaping stands between data and execution.
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.read_text())
    probed = tmp_path / "probed.html"
    probed.write_text(text.replace("</body>", PROBE + "</body>"))
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--window-size=1400,900", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    match = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert match, proc.stdout[-2000:]
    return json.loads(html.unescape(match.group(1)))


def test_no_horizontal_overflow_at_1400px(chromium, tmp_path: Path) -> None:
    long = "x" * 400  # one unbreakable word, far wider than the page
    old = profile_frame(OLD_RATES, f"{SCRIPT}{long}")
    new = profile_frame(NEW_RATES, "ckpt-200")
    old["problem_id"] = old["problem_id"].replace({"p5": f"{SCRIPT}{long}"})
    new["problem_id"] = new["problem_id"].replace({"p5": f"{SCRIPT}{long}"})
    page = tmp_path / "compare.html"
    page.write_text(render_compare(compare(old, new)))
    result = _probe(chromium, page, tmp_path)
    assert result["pwned"] is False
    scroll_width, client_width = result["page"]
    assert client_width <= 1400 and scroll_width <= client_width  # the page itself never scrolls
    assert result["boxes"] and all(overflow == "auto" for _, _, overflow in result["boxes"])
    # The long problem id and model name widen their tables, which scroll inside their boxes.
    assert any(inner > outer for inner, outer, _ in result["boxes"])
