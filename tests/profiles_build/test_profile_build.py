"""``build_profiles`` on every input form gives the hand-computed profile table."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from profile_fixtures import (
    EXPECTED,
    ROLLOUTS,
    ROLLOUTS_M,
    STAMP,
    STAMP_OLD,
    rollout,
    samples_lines,
    write_jsonl,
    write_parquet,
    write_run,
)

from lm_failtrace.profiles.build import PROFILE_COLUMNS, build_profiles
from lm_failtrace.rollouts import NO_ANSWER, OutcomeTally, outcome_features


def assert_profile(frame: pd.DataFrame, expected: dict[tuple[str, str], dict[str, float]]) -> None:
    """Exactly the expected failure units, in order, each feature equal to the hand value."""
    assert list(zip(frame["model"], frame["problem_id"], strict=True)) == list(expected)
    assert list(frame["cell"]) == [f"{m}|t" for m, _ in expected]
    assert set(frame["task"]) == {"t"}
    for (model, pid), values in expected.items():
        row = frame[(frame["model"] == model) & (frame["problem_id"] == pid)].iloc[0]
        for col, value in values.items():
            if math.isnan(value):
                assert math.isnan(row[col]), (model, pid, col)
            else:
                assert row[col] == pytest.approx(value, rel=1e-12, abs=1e-15), (model, pid, col)


def test_sidecar_jsonl(sidecar: Path) -> None:
    built = build_profiles(sidecar)
    assert_profile(built.frame, EXPECTED)
    assert list(built.frame.columns) == ["cell", "model", "task", "problem_id", *PROFILE_COLUMNS]
    assert built.n_rollouts == len(ROLLOUTS)
    assert built.n_units == 5  # p0..p3 of m, p0 of m2
    counts = built.cells[("m", "t")]
    assert (counts.problems, counts.repeats) == (4, 4)
    assert counts.pass_at_1 == pytest.approx((0.25 + 1 + 0 + 0.75) / 4)
    assert built.cells[("m2", "t")].repeats == 2


def test_generic_parquet_table_matches(tmp_path: Path) -> None:
    # A generic table from another harness: no repeat/doc_id/seed, a text column to ignore.
    records = [
        {k: r[k] for k in ("model", "task", "problem_id", "answer", "correct",
                           "generated_tokens", "finish_reason")} | {"text": "x" * 50}
        for r in ROLLOUTS
    ]  # fmt: skip
    built = build_profiles(write_parquet(tmp_path / "table.parquet", records))
    assert_profile(built.frame, EXPECTED)


def test_generic_table_coerces_numeric_ids_answers_and_01_correct(tmp_path: Path) -> None:
    records = [
        {"model": "m", "task": "t", "problem_id": 7, "answer": 5, "correct": 0},
        {"model": "m", "task": "t", "problem_id": 7, "answer": "5", "correct": 0},
        {"model": "m", "task": "t", "problem_id": 7, "answer": 6, "correct": 1},
    ]
    frame = build_profiles(write_jsonl(tmp_path / "g.jsonl", records)).frame
    assert frame["problem_id"].tolist() == ["7"]
    assert frame["mode_share"].tolist() == [1.0]  # 5 and "5" are the same answer
    assert frame["pass_rate"].tolist() == [pytest.approx(1 / 3)]
    # No finish reasons or token counts: unknown, never guessed.
    assert math.isnan(frame["truncation_rate"].iat[0])
    assert math.isnan(frame["mean_generated_tokens"].iat[0])


def test_samples_log_uses_first_filter_and_results_model_name(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "some__folder"
    folder.mkdir(parents=True)
    (folder / f"results_{STAMP}.json").write_text(json.dumps({"model_name": "m"}))
    # A second filter logs every doc again; reading it too would duplicate every rollout.
    lines = samples_lines(ROLLOUTS_M, filters=("failtrace", "other"))
    path = write_jsonl(folder / f"samples_t_{STAMP}.jsonl", lines)
    built = build_profiles(path)
    assert_profile(built.frame, {k: v for k, v in EXPECTED.items() if k[0] == "m"})
    assert built.n_rollouts == len(ROLLOUTS_M)


@pytest.mark.parametrize("level", ["output_path", "model_folder"])
def test_run_dir_prefers_sidecar_and_newest_run(tmp_path: Path, level: str) -> None:
    out = tmp_path / "runs"
    # The samples log of the same run says every rollout is correct: if it were read instead
    # of the side-car there would be no failure unit.
    all_correct = [dict(r, correct=True) for r in ROLLOUTS_M]
    folder = write_run(out / "m", ROLLOUTS_M, sidecar=False)
    (folder / f"samples_t_{STAMP}.jsonl").unlink()
    write_jsonl(folder / f"samples_t_{STAMP}.jsonl", samples_lines(all_correct))
    write_jsonl(folder / f"rollouts_t_{STAMP}.jsonl", ROLLOUTS_M)
    # An older run of the same task, with a different N, is ignored.
    write_run(folder, ROLLOUTS_M[:3], stamp=STAMP_OLD)
    built = build_profiles(out if level == "output_path" else folder)
    assert_profile(built.frame, {k: v for k, v in EXPECTED.items() if k[0] == "m"})
    assert built.sources == [folder / f"rollouts_t_{STAMP}.jsonl"]


def test_run_dir_falls_back_to_samples_and_reads_every_task_and_model(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    write_run(out / "m", ROLLOUTS_M, sidecar=False)
    u_rollouts = [dict(r, task="u") for r in ROLLOUTS_M]
    write_run(out / "m", u_rollouts, task="u", stamp=STAMP_OLD, sidecar=False)
    m2 = [dict(r, model="m2") for r in ROLLOUTS_M[:4]]
    write_run(out / "m2", m2, samples=False, model_name=None)
    built = build_profiles(out)
    assert [p.name for p in built.sources] == [
        f"samples_t_{STAMP}.jsonl",
        f"samples_u_{STAMP_OLD}.jsonl",
        f"rollouts_t_{STAMP}.jsonl",
    ]
    assert built.frame["cell"].unique().tolist() == ["m|t", "m|u", "m2|t"]
    assert len(built.frame) == 3 + 3 + 1


def test_model_name_from_model_args_then_folder(tmp_path: Path) -> None:
    no_model = [{k: v for k, v in r.items() if k != "model"} for r in ROLLOUTS_M]
    a = tmp_path / "a" / "folder_a"
    write_run(a, no_model, samples=False, model_name=None)
    results = a / f"results_{STAMP}.json"
    results.write_text(
        json.dumps({"config": {"model_args": "pretrained=org/tiny,api_key=SECRET,dtype=float32"}})
    )
    assert set(build_profiles(a).frame["model"]) == {"org/tiny"}
    b = tmp_path / "b" / "folder_b"
    write_run(b, no_model, samples=False, model_name=None)
    assert set(build_profiles(b).frame["model"]) == {"folder_b"}


def test_all_runs_pools_runs_per_problem(tmp_path: Path) -> None:
    folder = write_run(tmp_path / "m", ROLLOUTS_M, samples=False)
    write_run(folder, ROLLOUTS_M, stamp=STAMP_OLD, samples=False)
    built = build_profiles(folder, all_runs=True)
    row = built.frame.set_index("problem_id").loc["p0"]
    assert (row["n_rollouts"], row["n_failed_rollouts"]) == (8, 6)
    # Failed answers 5, 5, 7 twice over: shares 2/3 and 1/3, normalised by log(6) now.
    h = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    assert row["answer_entropy"] == pytest.approx(h / math.log(6), rel=1e-12)
    assert built.cells[("m", "t")].repeats == 8


def test_logit_aggregates_mean_over_failed_rollouts(tmp_path: Path) -> None:
    records = [
        rollout("p0", 0, "1", False, spread=0.2, concentration=1.0, logit_dispersion=-1.0),
        rollout("p0", 1, "2", False, spread=0.4, concentration=3.0, logit_dispersion=-2.0),
        rollout("p0", 2, "3", True, spread=0.9, concentration=9.0, logit_dispersion=9.0),
        # p1: one failed rollout lacks spread -> its unit's spread is unknown (NaN).
        rollout("p1", 0, "1", False, spread=0.5, concentration=2.0, logit_dispersion=0.5),
        rollout("p1", 1, "1", False, spread=None, concentration=4.0, logit_dispersion=1.5),
        rollout("p1", 2, "3", True),
    ]
    frame = build_profiles(write_jsonl(tmp_path / "r.jsonl", records)).frame
    assert list(frame.columns[-3:]) == ["spread", "concentration", "logit_dispersion"]
    p0, p1 = frame.iloc[0], frame.iloc[1]
    assert (p0["spread"], p0["concentration"], p0["logit_dispersion"]) == pytest.approx(
        (0.3, 2.0, -1.5)
    )
    assert math.isnan(p1["spread"])
    assert (p1["concentration"], p1["logit_dispersion"]) == pytest.approx((3.0, 1.0))


def test_no_failure_unit_gives_an_empty_table(tmp_path: Path) -> None:
    records = [rollout("p0", r, "1", True) for r in range(3)]
    built = build_profiles(write_jsonl(tmp_path / "r.jsonl", records))
    assert len(built.frame) == 0 and built.n_units == 1
    assert built.cells[("m", "t")].pass_at_1 == 1.0


rollouts_strategy = st.lists(
    st.tuples(
        st.sampled_from(["1", "2", "3", None]),
        st.booleans(),
        st.sampled_from(["stop", "length", None]),
        st.one_of(st.none(), st.integers(0, 100)),
    ),
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(rollouts_strategy)
def test_tally_matches_the_definitions(rows: list[tuple]) -> None:
    """OutcomeTally (what profile streams into) against the definitions written out directly."""
    tally = OutcomeTally()
    for answer, correct, reason, tokens in rows:
        tally.add(answer, correct, reason, tokens)
    got = tally.features()
    assert got == pytest.approx(
        outcome_features(*map(list, zip(*rows, strict=True))) if rows else got, nan_ok=True
    )
    failed = [r for r in rows if not r[1]]
    assert got["n_rollouts"] == len(rows) and got["n_failed_rollouts"] == len(failed)
    if not failed:
        assert math.isnan(got["answer_entropy"])
        return
    counts = Counter(NO_ANSWER if a is None else a for a, *_ in failed)
    k = len(failed)
    h = -sum(c / k * math.log(c / k) for c in counts.values())
    assert got["answer_entropy"] == pytest.approx(h / math.log(k) if k > 1 else 0.0, abs=1e-12)
    assert got["mode_share"] == max(counts.values()) / k
    assert got["no_answer_rate"] == counts.get(NO_ANSWER, 0) / k
    reasons = [r[2] for r in failed]
    if None in reasons:
        assert math.isnan(got["truncation_rate"])
    else:
        assert got["truncation_rate"] == reasons.count("length") / k
    tokens = [r[3] for r in failed]
    if None in tokens:
        assert math.isnan(got["max_generated_tokens"])
    else:
        assert got["mean_generated_tokens"] == sum(tokens) / k
        assert got["max_generated_tokens"] == max(tokens)
