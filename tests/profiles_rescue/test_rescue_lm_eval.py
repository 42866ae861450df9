"""``--rescue`` between two real lm-eval runs of the bundled tiny specialist (``failtrace eval``).

The base run samples at the task's T = 0.6 with its 128-token budget; the other run is the same
model with ``max_gen_toks=512``: its verbosity problems (answers after a 150-200 character
restatement) finish there. The rescue column must equal the second run's pass rate on each
problem, recomputed here from its samples log's raw texts (the integer after ``####`` against
the target), and the tokens column the mean of its side-car's token counts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from lm_failtrace.cli import main
from lm_failtrace.models import tiny_model_path
from lm_failtrace.profiles import read_profiles
from lm_failtrace.record.tasks import tasks_dir

TASK = "failtrace_arith"
#: Two slips, four verbosity problems, one beyond reach (the bundled data is grouped by mechanism).
DOCS = [0, 1, 25, 26, 27, 28, 75]
FAILTRACE = Path(sys.executable).with_name("failtrace")
ANSWER = re.compile(r"####\s*(-?\d+)")


def _record(out: Path, *extra: str) -> Path:
    """One real ``failtrace eval`` of the bundled specialist on DOCS (16 repeats each)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "LMEVAL_LOG_LEVEL": "WARNING"}  # fmt: skip
    done = subprocess.run(
        [str(FAILTRACE), "eval", "--model", "failtrace-hf",
         "--model_args", f"pretrained={tiny_model_path('specialist')}",
         "--tasks", TASK, "--include_path", str(tasks_dir()),
         "--samples", json.dumps({TASK: DOCS}), "--batch_size", "64", "--device", "cpu",
         "--log_samples", "--output_path", str(out), *extra],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("rescue_runs")
    base = _record(root / "t06")
    longer = _record(root / "long", "--gen_kwargs", "max_gen_toks=512")
    return base, longer


def _only(folder: Path, pattern: str) -> Path:
    (path,) = folder.rglob(pattern)
    return path


def independent_pass_rates(run: Path) -> dict[str, float]:
    """Per problem: the share of the samples log's raw texts whose ``####`` integer is right."""
    rates = {}
    for line in _only(run, "samples_*.jsonl").read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        texts = doc["resps"][0] if len(doc["resps"]) == 1 else [r[0] for r in doc["resps"]]
        right = [(m := ANSWER.search(t)) is not None and m[1] == doc["target"] for t in texts]
        rates[doc["doc"]["problem_id"]] = sum(right) / len(right)
    return rates


def independent_tokens(run: Path) -> dict[str, float]:
    """Per problem: the mean of the side-car's generated token counts."""
    counts: dict[str, list[int]] = {}
    for line in _only(run, "rollouts_*.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        counts.setdefault(row["problem_id"], []).append(row["generated_tokens"])
    return {problem: sum(c) / len(c) for problem, c in counts.items()}


def test_rescue_column_is_the_other_runs_pass_rate(runs: tuple[Path, Path], tmp_path: Path) -> None:
    base, longer = runs
    out = tmp_path / "t.parquet"
    args = ["profile", str(base), "--rescue", f"long={longer}", "-o", str(out), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    frame = read_profiles(out).frame
    assert len(frame) >= 5  # the specialist fails most of these problems at least once
    rates, tokens = independent_pass_rates(longer), independent_tokens(longer)
    for _, row in frame.iterrows():
        assert row["long"] == pytest.approx(rates[row["problem_id"]], abs=1e-12)
        assert row["long_tokens"] == pytest.approx(tokens[row["problem_id"]], rel=1e-12)
    base_rates = independent_pass_rates(base)
    for _, row in frame.iterrows():  # leave-one-out retry: k correct of n, k / (n - 1)
        k = base_rates[row["problem_id"]] * row["n_rollouts"]
        assert row["retry"] == pytest.approx(k / (row["n_rollouts"] - 1), abs=1e-12)
    verbose = frame["problem_id"].str.contains("verbosity")
    assert (frame.loc[verbose, "long"] > frame.loc[verbose, "pass_rate"]).any()  # budget helps
    summary = json.loads(result.stdout)
    assert [c["name"] for c in summary["rescue"]] == ["retry", "long"]
    assert summary["rescue"][1]["n_missing"] == 0

    analysed = CliRunner().invoke(main, ["analyze", str(out), "--json", "--repeats", "2"])
    assert analysed.exit_code == 0, analysed.output
    (section,) = json.loads(analysed.stdout)["cells"].values()
    assert section["operators"]["long"]["rescue"]["mean"] == pytest.approx(frame["long"].mean())
    assert section["operators"]["long"]["tokens_per_trial"] == pytest.approx(
        frame["long_tokens"].mean()
    )
