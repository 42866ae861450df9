"""``failtrace profile`` on real Inspect AI logs: a scripted ``mockllm`` run of several epochs.

Every expected value below is worked out by hand from the script in ``inspect_runs.py`` (what the
scripted model answers, how many tokens it spends, where it stops), never from the log.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from inspect_runs import (
    EPOCHS,
    GRADER_TOKENS,
    SCRIPT,
    TASK,
    Reply,
    run_inspect,
)

from lm_failtrace.cli import main
from lm_failtrace.profiles import read_profiles
from lm_failtrace.profiles.build import build_profiles
from lm_failtrace.rollouts import discover

MODEL = "mockllm/model@reasoning_effort=low"
CELL = f"{MODEL}|{TASK}"


def _entropy(*counts: int) -> float:
    n = sum(counts)
    return -sum(c / n * math.log(c / n) for c in counts) / math.log(n)


#: The failure units of SCRIPT, by hand: q1 fails once (answer 5), q2 always (6, 8, 6, 6), q3
#: twice at max_tokens without an answer, q4 once in its 3 rollouts (its 2nd call errors), long
#: always at the sample's token limit; boom errors in every epoch (no rollout).
EXPECTED: dict[str, dict[str, float]] = {
    "q1": {"n_rollouts": 4, "n_failed_rollouts": 1, "pass_rate": 0.75, "answer_entropy": 0.0,
           "mode_share": 1.0, "truncation_rate": 0.0, "no_answer_rate": 0.0,
           "mean_generated_tokens": 30.0, "max_generated_tokens": 30.0},
    "q2": {"n_rollouts": 4, "n_failed_rollouts": 4, "pass_rate": 0.0,
           "answer_entropy": _entropy(3, 1), "mode_share": 0.75, "truncation_rate": 0.0,
           "no_answer_rate": 0.0, "mean_generated_tokens": 23.0, "max_generated_tokens": 26.0},
    "q3": {"n_rollouts": 4, "n_failed_rollouts": 2, "pass_rate": 0.5, "answer_entropy": 0.0,
           "mode_share": 1.0, "truncation_rate": 1.0, "no_answer_rate": 1.0,
           "mean_generated_tokens": 64.0, "max_generated_tokens": 64.0},
    "q4": {"n_rollouts": 3, "n_failed_rollouts": 1, "pass_rate": 2 / 3, "answer_entropy": 0.0,
           "mode_share": 1.0, "truncation_rate": 0.0, "no_answer_rate": 0.0,
           "mean_generated_tokens": 7.0, "max_generated_tokens": 7.0},
    "long": {"n_rollouts": 4, "n_failed_rollouts": 4, "pass_rate": 0.0, "answer_entropy": 0.0,
             "mode_share": 1.0, "truncation_rate": 1.0, "no_answer_rate": 1.0,
             "mean_generated_tokens": 300.0, "max_generated_tokens": 300.0},
}  # fmt: skip

ERRORED = 5  # boom's 4 epochs and q4's second


@pytest.fixture(scope="module")
def low_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scripted run at reasoning_effort=low, as an ``.eval`` log."""
    return run_inspect(tmp_path_factory.mktemp("low"), reasoning_effort="low")


def assert_units(frame: pd.DataFrame, expected: dict[str, dict[str, float]]) -> None:
    assert list(frame["problem_id"]) == list(expected)
    assert set(frame["cell"]) == {CELL}
    for problem_id, values in expected.items():
        row = frame[frame["problem_id"] == problem_id].iloc[0]
        for column, value in values.items():
            assert row[column] == pytest.approx(value, rel=1e-12), (problem_id, column)


def test_rollouts_of_a_real_inspect_log(low_log: Path) -> None:
    (source,) = discover(low_log)
    records = list(source)
    keys = [(r["problem_id"], r["repeat"]) for r in records]
    expected_keys = [
        (sample_id, epoch)
        for sample_id, (_, _, replies) in SCRIPT.items()
        for epoch, reply in enumerate(replies)
        if reply.text is not None
    ]
    assert sorted(keys) == sorted(expected_keys)  # one rollout per scored (sample id, epoch)
    assert source.skipped["errored"] == ERRORED
    by_key = {(r["problem_id"], r["repeat"]): r for r in records}
    for sample_id, epoch in expected_keys:
        reply: Reply = SCRIPT[sample_id][2][epoch]
        record = by_key[sample_id, epoch]
        assert record["model"] == MODEL and record["task"] == TASK
        # The evaluated model's own tokens: the grader's GRADER_TOKENS per sample never count.
        assert record["generated_tokens"] == reply.tokens < GRADER_TOKENS
        limited = sample_id == "long"  # over the sample's token limit: its output is dropped
        length = reply.stop == "max_tokens" or limited
        assert record["finish_reason"] == ("length" if length else "stop")
        assert record["answer"] == (None if limited else reply.text or None)
        assert record["correct"] == (not limited and reply.text == SCRIPT[sample_id][1])


def test_profile_cli_rows_tokens_and_errored_samples(low_log: Path, tmp_path: Path) -> None:
    out = tmp_path / "profiles.parquet"
    result = CliRunner().invoke(main, ["profile", str(low_log), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["rollouts"], summary["problems"], summary["failure_units"]) == (19, 5, 5)
    assert summary["errored_samples"] == ERRORED
    (cell,) = summary["cells"]
    assert (cell["cell"], cell["repeats"], cell["errored_samples"]) == (CELL, EPOCHS, ERRORED)
    assert cell["pass_at_1"] == pytest.approx((0.75 + 0 + 0.5 + 2 / 3 + 0) / 5)
    assert_units(read_profiles(out).frame, EXPECTED)
    text = CliRunner().invoke(main, ["profile", str(low_log)])
    assert f"Samples that errored without a score (not rollouts): {CELL} {ERRORED}" in text.stdout


def test_json_log_reads_like_eval_log(low_log: Path, tmp_path: Path) -> None:
    json_log = run_inspect(tmp_path / "json", log_format="json", reasoning_effort="low")
    assert json_log.suffix == ".json"
    pd.testing.assert_frame_equal(build_profiles(json_log).frame, build_profiles(low_log).frame)
    # Two logs of one model, settings and task in one folder would pool: refused, both named.
    shutil.copy(low_log, json_log.parent / low_log.name)
    result = CliRunner().invoke(main, ["profile", str(json_log.parent)])
    assert result.exit_code == 2
    assert "two logs of model 'mockllm/model@reasoning_effort=low'" in result.stderr
    assert json_log.name in result.stderr and low_log.name in result.stderr


def test_scorer_and_score_values(low_log: Path) -> None:
    graded = build_profiles(low_log, scorer="model_graded_qa")  # the grader passes everything
    assert len(graded.frame) == 0 and graded.n_rollouts == 19
    flipped = build_profiles(low_log, score_values={"I": True})  # every I counted correct
    assert len(flipped.frame) == 0
    result = CliRunner().invoke(main, ["profile", str(low_log), "--score-value", "I=1"])
    assert result.exit_code == 0 and "0 failure units" in result.stdout


def test_partial_credit_mapped_by_score_value(tmp_path: Path) -> None:
    log = run_inspect(tmp_path, partial=True, graded=False, reasoning_effort="low")
    built = build_profiles(log, score_values={"P": False})
    assert_units(built.frame, EXPECTED)  # P where match said I: the same failures


def test_ladder_rescue_columns_are_the_higher_settings_pass_rates(
    low_log: Path, tmp_path: Path
) -> None:
    high_script = {
        "q1": ("What is 2 + 2?", "4", [Reply("4", 15)] * EPOCHS),
        "q2": (
            "What is 3 + 4?",
            "7",
            [Reply("7", 40), Reply("7", 44), Reply("8", 48), Reply("7", 52)],
        ),
        "q3": ("What is 4 + 5?", "9", [Reply("9", 90)] * EPOCHS),
        "long": (
            "What is 1 + 2? Think long.",
            "3",
            [Reply("3", 150), Reply("", 190, "max_tokens"), Reply("3", 160), Reply("3", 170)],
        ),
    }  # fmt: skip  (q4 is not in the high run: its unit's column stays empty)
    medium_script = {**high_script, "q2": ("What is 3 + 4?", "7", [Reply("6", 30)] * EPOCHS)}
    ladder = tmp_path / "ladder"
    ladder.mkdir()
    shutil.copy(low_log, ladder / low_log.name)
    run_inspect(ladder, high_script, reasoning_effort="high")
    run_inspect(ladder, medium_script, reasoning_effort="medium")
    out = tmp_path / "t.csv"
    args = ["profile", str(ladder), "--ladder", "-o", str(out), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    frame = read_profiles(out).frame.set_index("problem_id")
    assert_units(frame.reset_index(), EXPECTED)  # BASE is the lowest setting
    for name, script in (("reasoning_effort_medium", medium_script),
                         ("reasoning_effort_high", high_script)):  # fmt: skip
        for problem_id in EXPECTED:
            if problem_id not in script:
                assert math.isnan(frame.loc[problem_id, name])
                continue
            _, target, replies = script[problem_id]
            rate = sum(r.text == target for r in replies) / len(replies)
            tokens = sum(r.tokens for r in replies) / len(replies)
            assert frame.loc[problem_id, name] == pytest.approx(rate)
            assert frame.loc[problem_id, f"{name}_tokens"] == pytest.approx(tokens)
    # Retry estimated from BASE's own rollouts: k correct of n, leave one out: k / (n - 1).
    retry = {"q1": 3 / 3, "q2": 0 / 3, "q3": 2 / 3, "q4": 2 / 2, "long": 0 / 3}
    assert frame["retry"].to_dict() == pytest.approx(retry)
    assert frame.loc["q1", "retry_tokens"] == pytest.approx((10 + 12 + 30 + 11) / 4)
    summary = json.loads(result.stdout)
    columns = {c["name"]: c for c in summary["rescue"]}
    assert list(columns) == ["retry", "reasoning_effort_medium", "reasoning_effort_high"]
    assert columns["retry"]["estimated"] is True
    assert (columns["reasoning_effort_high"]["n_units"], columns["reasoning_effort_high"]
            ["n_missing"]) == (4, 1)  # fmt: skip
    table = read_profiles(out)
    assert table.schema.operators == ("retry", "reasoning_effort_medium", "reasoning_effort_high")
