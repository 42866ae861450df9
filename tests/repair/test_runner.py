"""``failtrace repair`` on a real recorded run: rescue columns, resumption, errors."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lm_failtrace.errors import InputError
from lm_failtrace.profiles import ALL_OPERATORS, ProfileSchema, read_profiles
from lm_failtrace.repair import runner
from lm_failtrace.repair.runner import RepairConfig, UnitDoc, repair_run, repair_unit
from lm_failtrace.repair.steering import Attempt

FAILTRACE = Path(sys.executable).with_name("failtrace")
CONFIG = RepairConfig(trials=2, attempts=2)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, make_tiny_lm) -> Path:
    """A real `failtrace eval` run of failtrace_arith with a tiny specialist and ancestor."""
    root = tmp_path_factory.mktemp("repair")
    spec = make_tiny_lm(root / "spec", seed=0)
    anc = make_tiny_lm(root / "anc", seed=1)
    tasks = subprocess.run(
        [str(FAILTRACE), "tasks-path"], capture_output=True, text=True, check=True
    ).stdout.strip()
    cmd = [
        str(FAILTRACE), "eval", "--model", "failtrace-hf",
        "--model_args", f"pretrained={spec},ancestor={anc}",
        "--tasks", "failtrace_arith", "--include_path", tasks, "--limit", "3",
        "--gen_kwargs", "max_gen_toks=24", "--batch_size", "16",
        "--log_samples", "--output_path", str(root / "runs"),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return root / "runs"


def test_repair_writes_rescue_and_token_columns(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "profiles.csv"
    table = repair_run(run_dir, out, CONFIG)
    assert len(table) == 3  # a random model fails every problem
    assert not out.with_name(out.name + ".partial.jsonl").exists()
    read = read_profiles(
        out, ProfileSchema(features=("spread", "mode_share"), operators=ALL_OPERATORS)
    )
    frame = read.frame
    for op in ALL_OPERATORS:
        assert set(frame[op]) <= {0.0, 0.5, 1.0}  # multiples of 1/trials
        assert (frame[f"{op}_tokens"] > 0).all()
    # budget gives 4x the tokens: a trial can only spend more
    assert (frame["budget_tokens"] >= frame["retry_tokens"]).all()
    assert (frame["budget_tokens"] > frame["retry_tokens"]).any()


@contextlib.contextmanager
def interrupted_after_first_unit(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Ctrl-C right after the first unit's result reached the checkpoint file."""
    real = runner.Checkpoint.add

    def add_then_interrupt(self, *args, **kwargs):
        real(self, *args, **kwargs)
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(runner.Checkpoint, "add", add_then_interrupt)
        yield


def test_interrupted_repair_resumes_without_redoing_units(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = repair_run(run_dir, tmp_path / "fresh.csv", CONFIG)
    out = tmp_path / "resumed.csv"
    calls: list[str] = []
    real = runner.repair_unit

    def counting(unit, *args, **kwargs):
        calls.append(unit.problem_id)
        return real(unit, *args, **kwargs)

    monkeypatch.setattr(runner, "repair_unit", counting)

    with interrupted_after_first_unit(monkeypatch), pytest.raises(KeyboardInterrupt):
        repair_run(run_dir, out, CONFIG)
    assert len(calls) == 1 and not out.exists()
    partial = out.with_name(out.name + ".partial.jsonl")
    assert len(partial.read_text().splitlines()) == 2  # settings + one unit
    resumed = repair_run(run_dir, out, CONFIG)
    assert len(calls) == 3 and len(set(calls)) == 3  # the finished unit was not redone
    pd.testing.assert_frame_equal(resumed, fresh)


def test_checkpoint_from_other_settings_is_refused(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "p.csv"
    with interrupted_after_first_unit(monkeypatch), pytest.raises(KeyboardInterrupt):
        repair_run(run_dir, out, CONFIG)
    with pytest.raises(InputError, match="other settings"):
        repair_run(run_dir, out, RepairConfig(trials=3, attempts=2))


def test_restart_discards_the_checkpoint(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "p.csv"
    with interrupted_after_first_unit(monkeypatch), pytest.raises(KeyboardInterrupt):
        repair_run(run_dir, out, CONFIG)
    calls: list[str] = []
    real = runner.repair_unit

    def counting(unit, *args, **kwargs):
        calls.append(unit.problem_id)
        return real(unit, *args, **kwargs)

    monkeypatch.setattr(runner, "repair_unit", counting)
    other = RepairConfig(trials=3, attempts=2)  # resuming would be refused: other settings
    table = repair_run(run_dir, out, other, restart=True)
    assert len(calls) == len(table) == 3  # every unit redone, under the new settings
    assert set(table["retry"]) <= {0.0, 1 / 3, 2 / 3, 1.0}
    assert not out.with_name(out.name + ".partial.jsonl").exists()


def test_steering_without_an_ancestor_is_a_clear_error(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="ancestor"):
        repair_run(run_dir, tmp_path / "x.csv", CONFIG, model_args={"ancestor": ""})
    table = repair_run(
        run_dir,
        tmp_path / "bb.csv",
        RepairConfig(operators=("retry", "budget", "temp_shift"), trials=2, attempts=2),
        model_args={"ancestor": ""},
    )
    assert {"retry", "budget", "temp_shift"} <= set(table.columns)
    assert "sparse_steer" not in table.columns


def test_unknown_operator_and_missing_retry() -> None:
    with pytest.raises(InputError, match="unknown operator"):
        RepairConfig(operators=("retry", "warp_drive")).check()
    with pytest.raises(InputError, match="retry is required"):
        RepairConfig(operators=("budget",)).check()


class ScriptedAttempts:
    """A test double of the model: attempt text is the seed's parity, so outcomes are known."""

    steers = False

    def generate(self, prompt, plans, until):
        return [Attempt(p, f"#### {p.seed % 2}", p.max_new_tokens // 8, "stop") for p in plans]


class ParityScorer:
    def correct(self, doc, target, texts):
        return [t.endswith(target) for t in texts]


def test_rescue_is_the_share_of_trials_with_a_correct_attempt() -> None:
    unit = UnitDoc("t", "p1", {}, "1", "Q", {"temperature": 0.6, "max_gen_toks": 80})
    config = RepairConfig(operators=("retry", "budget"), attempts=2, trials=5, seed=7)
    result = repair_unit(unit, ScriptedAttempts(), ParityScorer(), config)
    from lm_failtrace.repair.operators import OPERATORS, UnitContext

    ctx = UnitContext("p1", None, 0.6, 80, 7)
    wins = [
        any(p.seed % 2 == 1 for p in OPERATORS["retry"].plans(ctx, trial, 2)) for trial in range(5)
    ]
    assert result["retry"] == pytest.approx(np.mean(wins))
    assert result["budget"] == result["retry"]  # same seeds, same scripted outcome
    assert result["retry_tokens"] == 2 * 10 and result["budget_tokens"] == 2 * 40


def test_repair_adds_rescue_columns_from_other_runs(run_dir: Path, tmp_path: Path) -> None:
    """`failtrace repair --rescue NAME=OTHER`: measured and run-derived operators in one table."""
    import json

    from click.testing import CliRunner

    from lm_failtrace.cli import main

    units = repair_run(run_dir, tmp_path / "plain.csv", CONFIG)
    other = tmp_path / "bigger.jsonl"
    rows = [
        {"model": "bigger", "task": "failtrace_arith", "problem_id": pid, "answer": "1",
         "correct": r < k, "generated_tokens": 10 * (k + 1)}
        for k, pid in enumerate(units["problem_id"]) for r in range(4)
    ]  # fmt: skip
    other.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "mixed.parquet"
    args = ["repair", str(run_dir), "-o", str(out), "--operators", "retry,budget", "--trials",
            "2", "--attempts", "2", "--rescue", f"bigger={other}", "--json"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)["mean_rescue"]) == {"retry", "budget", "bigger"}
    table = read_profiles(out)
    assert table.schema.operators == ("retry", "budget", "bigger")
    expected = {pid: (k / 4, 10.0 * (k + 1)) for k, pid in enumerate(units["problem_id"])}
    for pid, rate, tokens in table.frame[["problem_id", "bigger", "bigger_tokens"]].itertuples(
        index=False
    ):
        assert (rate, tokens) == expected[pid]
    clash = CliRunner().invoke(main, [*args[:-3], "--rescue", f"budget={other}"])
    assert clash.exit_code == 2 and "cannot name a rescue column 'budget'" in clash.output
