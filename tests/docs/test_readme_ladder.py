"""The README's ladder example prints, on the logs ``scripts/inspect_ladder.py`` writes, exactly
what the README shows (Inspect's timestamped log names aside)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from lm_failtrace.cli import main

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SCRIPT = REPO / "scripts" / "inspect_ladder.py"
#: Inspect names a log by its start time and a random id.
LOG_NAME = re.compile(r"\d{4}-\d\d-\d\dT[\d-]+_arith-ladder_\w+\.eval")
MAP = ["--map", "truncation_rate=reasoning_effort_high", "--token-budget", "2"]


def _normalized(text: str) -> str:
    """Log names as ``LOG.eval``, and the table rule widths that depend on them collapsed."""
    text = LOG_NAME.sub("LOG.eval", text)
    return "\n".join(re.sub(r"\s+", " ", line).strip() for line in text.splitlines())


@pytest.mark.slow
def test_readme_ladder_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("inspect_ladder", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = script
    spec.loader.exec_module(script)
    monkeypatch.chdir(tmp_path)
    script.write_ladder(Path("ladder"))
    readme = _normalized(README.read_text(encoding="utf-8"))
    runner = CliRunner()
    profiled = runner.invoke(main, ["profile", "ladder", "--ladder", "-o", "ladder.parquet"])
    assert profiled.exit_code == 0, profiled.output
    assert _normalized(profiled.stdout).strip() in readme
    mapped = runner.invoke(main, ["analyze", "ladder.parquet", *MAP])
    assert mapped.exit_code == 0, mapped.output
    assert _normalized(mapped.stdout).strip() in readme
    default = runner.invoke(main, ["analyze", "ladder.parquet"])
    assert "+0.009 over best_fixed [-0.116, +0.132], a tie" in default.stdout
    assert "the selected ridge router is +0.009 over the best fixed operator, 95% CI -0.116 to" in (
        README.read_text(encoding="utf-8").replace("\n", " ")
    )
