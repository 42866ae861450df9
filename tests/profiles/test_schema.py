"""The profile table carries its schema: Parquet metadata, CSV columns, narrowing, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lm_failtrace.errors import InputError
from lm_failtrace.profiles import (
    ALL_OPERATORS,
    KNOWN_FEATURES,
    OUTCOME_FEATURES,
    SCHEMA_METADATA_KEY,
    ProfileSchema,
    read_profiles,
    validate_profiles,
    write_profiles,
)


def _frame(features: tuple[str, ...], operators: tuple[str, ...], n: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"cell": "m|t", "model": "m", "task": "t", "problem_id": [f"p{i}" for i in range(n)]}
    )
    for name in features:
        frame[name] = rng.uniform(0, 1, n)
    for op in operators:
        frame[op] = rng.integers(0, 5, n) / 4
        frame[f"{op}_tokens"] = rng.uniform(10, 100, n)
    frame["no_answer_rate"] = 0.0  # a rate, but neither a feature nor an operator
    return frame


def test_parquet_declares_the_written_schema(tmp_path):
    frame = _frame(("spread", "mode_share"), ("retry", "budget"))
    declared = ProfileSchema(features=("mode_share",), operators=("retry",))
    path = write_profiles(frame, tmp_path / "p.parquet", declared)
    raw = pq.read_schema(path).metadata[SCHEMA_METADATA_KEY.encode()]
    assert json.loads(raw) == {"features": ["mode_share"], "operators": ["retry"], "format": 1}
    table = read_profiles(path)
    assert (table.schema.features, table.schema.operators) == (("mode_share",), ("retry",))
    # written again from the table: the declaration travels with it
    again = read_profiles(write_profiles(table, tmp_path / "again.parquet"))
    assert again.schema == table.schema
    pd.testing.assert_frame_equal(again.frame, table.frame)


def test_csv_schema_is_what_its_columns_imply(tmp_path):
    frame = _frame(("truncation_rate", "spread", "answer_entropy"), ("budget", "retry", "my_op"))
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)
    schema = read_profiles(path).schema
    # known features in their canonical order; known operators first, then the column with a
    # <name>_tokens companion (an operator repair wrote); no_answer_rate is neither
    assert schema.features == ("spread", "answer_entropy", "truncation_rate")
    assert schema.operators == ("retry", "budget", "my_op")


def test_a_frame_without_a_declaration_reads_like_a_csv():
    frame = _frame(KNOWN_FEATURES, ALL_OPERATORS)
    schema = validate_profiles(frame).schema
    assert (schema.features, schema.operators) == (KNOWN_FEATURES, ALL_OPERATORS)
    header = pd.DataFrame(columns=["cell", "retry", "spread_x", "x_tokens"])
    assert ProfileSchema.from_frame(header).operators == ("retry",)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_explicit_columns_narrow_the_schema(tmp_path, suffix):
    path = write_profiles(_frame(OUTCOME_FEATURES, ALL_OPERATORS), tmp_path / f"p{suffix}")
    table = read_profiles(path, ProfileSchema.from_options("mode_share", None))
    assert table.schema.features == ("mode_share",)
    assert table.schema.operators == ALL_OPERATORS
    table = read_profiles(path, ProfileSchema.from_options(None, "retry,budget"))
    assert table.schema.features == OUTCOME_FEATURES
    assert table.schema.operators == ("retry", "budget")


@pytest.mark.parametrize(
    ("request_", "column", "role"),
    [
        (ProfileSchema(operators=("retry", "dense_steer")), "dense_steer", "operator"),
        (ProfileSchema(features=("spread",)), "spread", "feature"),
    ],
)
def test_a_requested_column_the_table_lacks_is_named(tmp_path, request_, column, role):
    path = write_profiles(_frame(OUTCOME_FEATURES, ("retry",)), tmp_path / "p.parquet")
    with pytest.raises(InputError) as info:
        read_profiles(path, request_)
    assert info.value.column == column and info.value.path == str(path)
    assert f"missing {role} column" in info.value.message


def test_a_declared_column_the_file_lacks_is_an_error(tmp_path):
    frame = _frame(("spread",), ("retry",))
    data = pa.Table.from_pandas(frame.drop(columns="retry"), preserve_index=False)
    declaration = ProfileSchema(("spread",), ("retry",)).to_json()
    path = tmp_path / "p.parquet"
    pq.write_table(data.replace_schema_metadata({SCHEMA_METADATA_KEY: declaration}), path)
    with pytest.raises(InputError, match="missing operator column") as info:
        read_profiles(path)
    assert info.value.column == "retry"


@pytest.mark.parametrize("raw", ["not json", '{"features": [], "operators": [], "format": 9}'])
def test_an_unreadable_declaration_is_refused_not_guessed(tmp_path, raw):
    data = pa.Table.from_pandas(_frame(("spread",), ("retry",)), preserve_index=False)
    path = tmp_path / "p.parquet"
    pq.write_table(data.replace_schema_metadata({SCHEMA_METADATA_KEY: raw}), path)
    with pytest.raises(InputError, match="unreadable schema"):
        read_profiles(path)


def test_writing_a_schema_the_frame_does_not_hold_is_refused(tmp_path):
    with pytest.raises(ValueError, match="dense_steer"):
        write_profiles(
            _frame(("spread",), ("retry",)),
            tmp_path / "p.parquet",
            ProfileSchema(operators=("dense_steer",)),
        )
    assert list(tmp_path.iterdir()) == []


def test_an_empty_feature_column_is_not_declared_a_partly_empty_one_is(tmp_path):
    frame = _frame(("spread", "truncation_rate"), ("retry",))
    frame["truncation_rate"] = np.nan  # e.g. a backend that reports no finish reasons
    assert validate_profiles(frame).schema.features == ("spread",)
    frame.loc[0, "spread"] = np.nan
    with pytest.raises(InputError, match="missing value") as info:
        validate_profiles(frame)
    assert info.value.column == "spread"


@pytest.mark.parametrize("with_logits", [False, True])
def test_the_profile_builder_declares_what_it_measured(tmp_path, with_logits):
    from lm_failtrace.profiles.build import build_profiles

    rows = [
        {"model": "/ckpts/m/", "task": "t", "problem_id": p, "repeat": r, "answer": str(r % 2),
         "correct": r == 0, "spread": 0.1 * r if with_logits else None}
        for p in ("a", "b") for r in range(4)
    ]  # fmt: skip
    source = tmp_path / "rollouts.jsonl"
    source.write_text("\n".join(json.dumps(row) for row in rows))
    built = build_profiles(source)
    logits = ("spread",) if with_logits else ()
    assert built.schema.features == (*logits, "answer_entropy", "mode_share")  # no finish reasons
    assert built.schema.operators == ()
    path = write_profiles(built.frame, tmp_path / "profiles.parquet", built.schema)
    assert read_profiles(path).schema == built.schema
