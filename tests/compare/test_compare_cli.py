"""``failtrace compare`` on two profile tables: text, JSON, the HTML page, errors, escaping."""

from __future__ import annotations

import json

import pytest
from _html import Page
from click.testing import CliRunner
from compare_tables import NEW_RATES, OLD_RATES, profile_frame

from lm_failtrace.cli import main

FAST = ["--repeats", "2", "--folds", "3"]
SCRIPT = "<script>alert(1)</script>"
BREAKOUT = '" onmouseover="alert(1)'
#: Tags compare.html is made of: nothing from data may add one.
PAGE_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "ul", "li", "div",
    "table", "thead", "tbody", "tr", "th", "td", "dl", "dt", "dd",
}  # fmt: skip


def _run(*args: str):
    return CliRunner().invoke(main, ["compare", *args, *FAST])


def test_text_tables(table_files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    old, new = table_files
    result = _run(str(old), str(new))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Failure landscape comparison: old.csv -> new.csv" in out  # short, telling labels
    assert "== task arith ==" in out
    for title in ("Regime shares", "Mean rescue per operator", "Regime transitions", "Paired"):
        assert title in out
    assert "different models: old is 'ckpt-100', new is 'ckpt-200'" in out
    assert "8 problems fail in both" in out and "5 moved between regimes" in out
    assert "too few units" in out  # 8 paired problems: no interval
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.csv", "old.csv"]  # nothing written


def test_json_and_html(table_files, tmp_path):
    old, new = table_files
    page = tmp_path / "out" / "compare.html"
    result = _run(str(old), str(new), "--json", "-o", str(page))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["html"] == str(page)
    moves = doc["tasks"]["arith"]["transitions"]
    assert moves["counts"]["beyond_reach"] == {"steerable": 1, "resample": 0, "beyond_reach": 1}
    assert doc["old"]["label"] == "old.csv" and doc["old"]["path"] == str(old)
    assert doc["same_model"] is False
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in text
    assert "<script" not in text  # the page has no script at all
    parsed = Page(text)
    assert parsed.tags <= PAGE_TAGS
    cells = "".join(parsed.text)
    assert "Regime transitions" in cells and "too few units" in cells


def test_hostile_strings_stay_escaped(tmp_path):
    old = profile_frame(OLD_RATES, f"old {SCRIPT}")
    new = profile_frame(NEW_RATES, f"new {BREAKOUT}")
    # Every paired problem moves or not; give the moved ones hostile ids.
    ids = {p: f"{SCRIPT}{BREAKOUT}{p}" for p in ("p5", "p6", "p8", "p10", "p11")}
    old["problem_id"] = old["problem_id"].replace(ids)
    new["problem_id"] = new["problem_id"].replace(ids)
    paths = tmp_path / f"a{BREAKOUT}.csv", tmp_path / "b.csv"
    old.to_csv(paths[0], index=False)
    new.to_csv(paths[1], index=False)
    page = tmp_path / "compare.html"
    result = _run(str(paths[0]), str(paths[1]), "-o", str(page))
    assert result.exit_code == 0, result.output
    text = page.read_text()
    for hostile in (SCRIPT, BREAKOUT):
        assert hostile not in text
    parsed = Page(text)
    assert parsed.tags <= PAGE_TAGS
    assert {name for _tag, name, _value in parsed.attributes} <= {
        "lang", "charset", "name", "content", "http-equiv", "class", "scope",
    }  # fmt: skip
    shown = "".join(parsed.text)
    assert f"old {SCRIPT}" in shown and f"new {BREAKOUT}" in shown  # as text
    assert all(i in shown for i in ids.values())  # the moved problems are listed, escaped


def test_different_tasks_exit_2_naming_both(table_files, tmp_path):
    old, _ = table_files
    other = tmp_path / "other.csv"
    profile_frame(NEW_RATES, "ckpt-200", task="gsm8k").to_csv(other, index=False)
    result = _run(str(old), str(other))
    assert result.exit_code == 2
    assert "--task" in result.stderr
    assert "arith" in result.stderr and "gsm8k" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["one.csv"], "give two profile tables"),
        (["a.csv", "b.csv", "--model-name", "m"], "not both"),
        (["a.csv", "b.csv", "--log"], "need --model-name"),
        (["--model-name", "m"], "--versions V1 V2 or --aliases A1 A2"),
        (["--model-name", "m", "--versions", "1", "2", "--aliases", "a", "b"], "--versions V1"),
    ],
)
def test_usage_errors_exit_2(args, message):
    result = _run(*args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_missing_file_and_unwritable_page_exit_2(table_files, tmp_path):
    old, new = table_files
    result = _run(str(old), str(tmp_path / "absent.csv"))
    assert result.exit_code == 2 and "absent.csv: no such file" in result.stderr
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = _run(str(old), str(new), "-o", str(blocker / "compare.html"))
    assert result.exit_code == 2 and f"{blocker} is a file, not a folder" in result.stderr


def test_missing_version_exits_2(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = _run("--model-name", "nobody", "--versions", "1", "2", "--tracking-uri", uri)
    assert result.exit_code == 2, result.output
    assert "--versions: registered model 'nobody' has no version 1" in result.stderr
