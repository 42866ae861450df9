"""``lm_failtrace.analysis.compare`` on tables whose regimes and paired differences are known."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from compare_tables import profile_frame

from lm_failtrace.analysis import CompareSide, compare
from lm_failtrace.errors import InputError
from lm_failtrace.formatting import to_jsonable
from lm_failtrace.profiles import read_profiles

S_RATES = (0.1, 0.6)


def test_regimes_and_transitions_are_exact(old_frame, new_frame, fast):
    doc = compare(old_frame, new_frame, fast)
    section = doc["tasks"]["arith"]
    old, new = section["old"]["regimes"], section["new"]["regimes"]
    assert {r: v["count"] for r, v in old.items()} == {
        "steerable": 5, "resample": 4, "beyond_reach": 3,
    }  # fmt: skip
    assert {r: v["count"] for r, v in new.items()} == {
        "steerable": 4, "resample": 4, "beyond_reach": 4,
    }  # fmt: skip
    assert old["steerable"]["mean"] == pytest.approx(5 / 12)
    moves = section["transitions"]
    assert moves["counts"] == {
        "steerable": {"steerable": 1, "resample": 1, "beyond_reach": 1},
        "resample": {"steerable": 1, "resample": 1, "beyond_reach": 1},
        "beyond_reach": {"steerable": 1, "resample": 0, "beyond_reach": 1},
    }
    assert (moves["n_paired"], moves["moved"], moves["stayed"]) == (8, 5, 3)
    assert moves["stopped_failing"] == {"steerable": 2, "resample": 1, "beyond_reach": 1}
    assert moves["started_failing"] == {"steerable": 1, "resample": 2, "beyond_reach": 1}
    assert (moves["n_stopped_failing"], moves["n_started_failing"]) == (4, 4)
    assert [(m["problem_id"], m["old"], m["new"]) for m in moves["moved_problems"]] == [
        ("p10", "steerable", "beyond_reach"),
        ("p11", "resample", "steerable"),
        ("p5", "steerable", "resample"),
        ("p6", "resample", "beyond_reach"),
        ("p8", "beyond_reach", "steerable"),
    ]
    # Every row of the old side is accounted for once: paired or stopped failing.
    for regime, row in moves["counts"].items():
        assert sum(row.values()) + moves["stopped_failing"][regime] == old[regime]["count"]


def test_paired_differences_are_exact_and_small_samples_get_no_interval(old_frame, new_frame, fast):
    paired = compare(old_frame, new_frame, fast)["tasks"]["arith"]["paired_rescue"]
    retry, sparse = paired["retry"], paired["sparse_steer"]
    # retry: 0, +0.5, -0.6, 0, +0.1, 0, -0.2, -0.4; sparse: +0.1, 0, -0.6, 0, +0.6, 0, -0.8, +0.1
    assert retry["mean"] == pytest.approx(-0.6 / 8)
    assert sparse["mean"] == pytest.approx(-0.6 / 8)
    assert (retry["improved"], retry["worsened"], retry["unchanged"]) == (2, 3, 3)
    assert (sparse["improved"], sparse["worsened"], sparse["unchanged"]) == (3, 2, 3)
    assert retry["p_value"] == pytest.approx(1.0) and sparse["p_value"] == pytest.approx(1.0)
    # 8 paired problems: fewer than 10 units, no interval (reports say "too few units").
    assert retry["n_units"] == 8
    assert retry["ci_low"] is None and retry["ci_high"] is None and retry["too_few"]


def test_sign_test_and_interval_on_enough_paired_problems(fast):
    ids = [f"q{i}" for i in range(12)]
    old = profile_frame(dict.fromkeys(ids, (0.1, 0.2)), "a")
    new = profile_frame({q: (0.1, 0.2 + (i + 1) / 20) for i, q in enumerate(ids)}, "a")
    section = compare(old, new, fast)["tasks"]["arith"]
    sparse, retry = section["paired_rescue"]["sparse_steer"], section["paired_rescue"]["retry"]
    assert sparse["mean"] == pytest.approx(np.mean([(i + 1) / 20 for i in range(12)]))
    assert (sparse["improved"], sparse["worsened"], sparse["unchanged"]) == (12, 0, 0)
    assert sparse["p_value"] == pytest.approx(2 * 0.5**12)  # exact two-sided sign test
    assert -1 <= sparse["ci_low"] <= sparse["mean"] <= sparse["ci_high"] <= 1
    assert sparse["ci_low"] > 0
    assert retry["unchanged"] == 12 and retry["p_value"] is None  # no non-zero change: no test
    assert section["transitions"]["moved"] == 0 and section["transitions"]["n_paired"] == 12


def test_the_document_is_strict_json(old_frame, new_frame, fast):
    doc = compare(old_frame, new_frame, fast)
    json.dumps(to_jsonable(doc), allow_nan=False)
    assert doc["config"]["operators"] == ["retry", "sparse_steer"]
    assert set(doc["methods"]) >= {"shares", "rescue", "paired_rescue"}


def test_different_tasks_are_an_error_naming_both(old_frame, fast):
    other = profile_frame({"p0": S_RATES}, "ckpt-200", task="gsm8k")
    with pytest.raises(InputError) as info:
        compare(old_frame, other, fast)
    assert info.value.parameter == "tasks"
    assert "arith" in str(info.value) and "gsm8k" in str(info.value)


def test_tasks_picks_the_shared_ones(old_frame, new_frame, fast):
    both = pd.concat([new_frame, profile_frame({"x": S_RATES}, "ckpt-200", task="gsm8k")])
    with pytest.raises(InputError, match="compare the tasks both hold \\(arith\\)"):
        compare(old_frame, both, fast)
    doc = compare(old_frame, both, fast, tasks=("arith",))
    assert list(doc["tasks"]) == ["arith"]
    with pytest.raises(InputError, match="has no task gsm8k") as info:
        compare(old_frame, both, fast, tasks=("gsm8k",))
    assert info.value.parameter == "tasks"


def test_a_side_of_several_models_is_an_error(old_frame, new_frame, fast):
    mixed = pd.concat([old_frame, new_frame])
    with pytest.raises(InputError, match="several models") as info:
        compare(mixed, new_frame, fast)
    assert info.value.parameter == "old"


def test_different_models_are_compared_and_said(old_frame, new_frame, fast):
    doc = compare(old_frame, new_frame, fast)
    assert doc["same_model"] is False
    assert "different models" in doc["notes"][0]
    same = compare(old_frame, new_frame.assign(model="ckpt-100", cell="ckpt-100|arith"), fast)
    assert same["same_model"] is True
    assert not any("different models" in n for n in same["notes"])


def test_operators_only_one_side_measured_are_left_out_and_said(old_frame, new_frame, fast):
    doc = compare(old_frame, new_frame.assign(local_temp=0.5), fast)
    assert doc["config"]["operators"] == ["retry", "sparse_steer"]
    assert any("local_temp left out" in n for n in doc["notes"])
    assert set(doc["tasks"]["arith"]["paired_rescue"]) == {"retry", "sparse_steer"}


def test_paths_and_sides(table_files, fast):
    old, new = table_files
    side = CompareSide(
        label="v3", pass_at_k={"arith": {"pass@1": 0.5}}, logged_selection={"arith": "retry"},
        details={"run_id": "abc"},
    )  # fmt: skip
    doc = compare(read_profiles(old), new, fast, old_side=side)
    assert doc["old"]["label"] == "v3" and doc["old"]["run_id"] == "abc"
    assert doc["old"]["source"] == str(old) and doc["new"]["source"] == str(new)
    section = doc["tasks"]["arith"]
    assert section["old"]["pass_at_k"] == {"pass@1": 0.5} and section["new"]["pass_at_k"] is None
    assert section["old"]["selection"]["logged"] == "retry"
    assert section["old"]["selection"]["selected"] in {
        "paper_rule",
        "best_fixed",
        "retry",
        "ridge_router",
    }
    for op in ("retry", "sparse_steer"):
        assert section["old"]["rescue"][op]["n_units"] == 12
