"""Rescue columns from other runs, in the library: matching, missing problems, a measured retry,
and columns from ``repair`` and from other runs in one table (``add_rescue``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lm_failtrace as ft
from lm_failtrace.analysis import AnalysisConfig, analyze


def rows(model: str, task: str, outcomes: dict[str, list[bool]], tokens: int = 10) -> list[dict]:
    """Rollout rows: problem -> correctness of each repeat (answers: "ok" or "no")."""
    return [
        {"model": model, "task": task, "problem_id": pid, "repeat": r, "correct": ok,
         "answer": "ok" if ok else "no", "generated_tokens": tokens + r}
        for pid, oks in outcomes.items() for r, ok in enumerate(oks)
    ]  # fmt: skip


def write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


BASE = {"p1": [True, False, False, True], "p2": [False] * 4, "p3": [True] * 4, "p4": [False, True,
        True, True]}  # fmt: skip


def test_missing_problems_are_empty_and_counted(tmp_path: Path) -> None:
    base = write(tmp_path / "base.jsonl", rows("m", "t", BASE))
    other = write(tmp_path / "other.jsonl", rows("big", "t", {"p1": [True, True], "p2": [True,
                  False]}, tokens=100))  # fmt: skip
    built = ft.build_profiles(base, rescue={"big": other})
    frame = built.frame.set_index("problem_id")
    assert list(frame.index) == ["p1", "p2", "p4"]  # p3 never fails
    assert frame.loc["p1", "big"] == 1.0 and frame.loc["p2", "big"] == 0.5
    assert math.isnan(frame.loc["p4", "big"]) and math.isnan(frame.loc["p4", "big_tokens"])
    assert frame.loc["p1", "big_tokens"] == 100.5  # (100 + 101) / 2
    big = {c.name: c for c in built.rescue}["big"]
    assert (big.n_units, big.n_missing, big.models) == (2, 1, ("big",))
    assert frame["retry"].to_dict() == pytest.approx({"p1": 2 / 3, "p2": 0.0, "p4": 1.0})
    assert frame.loc["p2", "retry_tokens"] == pytest.approx(11.5)  # (10 + 11 + 12 + 13) / 4
    assert built.schema.operators == ("retry", "big")


def test_match_task_and_one_bigger_model_for_several(tmp_path: Path) -> None:
    base = write(tmp_path / "base.jsonl", rows("a", "gsm8k", BASE) + rows("b", "gsm8k", BASE))
    other = write(tmp_path / "other.jsonl", rows("xl", "openai/gsm8k", {p: [True] * 2 for p in
                  BASE}))  # fmt: skip
    with pytest.raises(ft.InputError, match="task 'gsm8k' of the input is not in it"):
        ft.build_profiles(base, rescue={"xl": other})
    built = ft.build_profiles(base, rescue={"xl": other}, match_task={"gsm8k": "openai/gsm8k"})
    assert set(built.frame["cell"]) == {"a|gsm8k", "b|gsm8k"}
    assert (built.frame["xl"] == 1.0).all()  # both models' failures go to the one bigger model


def test_several_models_pair_by_name_up_to_settings(tmp_path: Path) -> None:
    low = rows("a@effort=low", "t", BASE) + rows("b@effort=low", "t", BASE)
    high = rows("a@effort=high", "t", {p: [True] * 2 for p in BASE})
    high += rows("b@effort=high", "t", {p: [False] * 2 for p in BASE})
    built = ft.build_profiles(
        write(tmp_path / "low.jsonl", low), rescue={"high": write(tmp_path / "high.jsonl", high)}
    )
    by_model = built.frame.groupby("model")["high"].unique().to_dict()
    assert {m: list(v) for m, v in by_model.items()} == {"a@effort=low": [1.0],
                                                         "b@effort=low": [0.0]}  # fmt: skip
    other = write(tmp_path / "c.jsonl", rows("c", "t", BASE) + rows("d", "t", BASE))
    with pytest.raises(ft.InputError, match="several models"):
        ft.build_profiles(tmp_path / "low.jsonl", rescue={"x": other})


def test_a_measured_retry_replaces_the_estimate(tmp_path: Path) -> None:
    base = write(tmp_path / "base.jsonl", rows("m", "t", BASE))
    rerun = write(tmp_path / "rerun.jsonl", rows("m", "t", {p: [True, False] for p in BASE}))
    built = ft.build_profiles(base, rescue={"retry": rerun})
    assert (built.frame["retry"] == 0.5).all()
    assert [(c.name, c.estimated) for c in built.rescue] == [("retry", False)]


def test_repair_columns_and_run_columns_in_one_table(tmp_path: Path) -> None:
    base = write(tmp_path / "base.jsonl", rows("m", "t", {f"p{i}": [i % 3 == 0, False, i % 2 == 0]
                 for i in range(24)}))  # fmt: skip
    frame = ft.build_profiles(base).frame
    rng = np.random.default_rng(0)  # stands in for `failtrace repair`'s measured columns
    for op in ("retry", "budget"):
        frame[op] = rng.integers(0, 5, len(frame)) / 4
        frame[f"{op}_tokens"] = rng.uniform(20, 80, len(frame))
    repaired = tmp_path / "repaired.parquet"
    ft.write_profiles(frame, repaired, ft.ProfileSchema.from_frame(frame))
    longer = write(tmp_path / "long.jsonl", rows("m", "t", {f"p{i}": [True, i % 4 == 0] for i in
                   range(24)}, tokens=50))  # fmt: skip
    table = ft.add_rescue(repaired, {"long": longer})
    assert table.schema.operators == ("retry", "budget", "long")
    expected = [1.0 if int(p[1:]) % 4 == 0 else 0.5 for p in table.frame["problem_id"]]
    assert list(table.frame["long"]) == expected
    assert list(table.frame["retry"]) == list(frame["retry"])  # repair's retry is kept
    doc = analyze(table, AnalysisConfig(n_repeats=2))
    assert set(doc["pooled"]["operators"]) == {"retry", "budget", "long"}
    with pytest.raises(ft.InputError, match="cannot name a rescue column 'budget'"):
        ft.add_rescue(repaired, {"budget": longer})
    without = pd.read_parquet(repaired).drop(columns=["retry", "retry_tokens"])
    with pytest.raises(ft.InputError, match="has no 'retry' column"):
        ft.add_rescue(without, {"long": longer})


def test_a_run_without_token_counts_leaves_costs_unknown(tmp_path: Path) -> None:
    base = write(tmp_path / "base.jsonl", rows("m", "t", {f"p{i}": [i % 2 == 0, False, True]
                 for i in range(12)}))  # fmt: skip
    other = rows("m", "t", {f"p{i}": [True, i % 3 == 0] for i in range(12)})
    other = write(tmp_path / "other.jsonl", [{**r, "generated_tokens": None} for r in other])
    built = ft.build_profiles(base, rescue={"other": other})
    assert built.frame["other_tokens"].isna().all() and built.frame["retry_tokens"].notna().all()
    doc = analyze(built.frame, AnalysisConfig(n_repeats=2))
    section = doc["cells"]["m|t"]
    assert section["budget"]["applied"] is False  # compared on rescue alone, and said so
    assert section["operators"]["other"]["tokens_per_trial"] is None
    assert section["operators"]["other"]["rescue"]["mean"] == pytest.approx(
        built.frame["other"].mean()
    )
