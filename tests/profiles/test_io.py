"""Profile-table I/O: round trips and one located error per kind of bad input (issue 2 item 2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lm_failtrace.errors import InputError
from lm_failtrace.profiles import ProfileSchema, read_profiles, write_profiles

FEATURES = ("spread", "concentration", "logit_dispersion")
OPERATORS = ("retry", "sparse_steer", "sparse_steer_random", "local_temp", "dense_steer")


def _frame(n: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "cell": "m|t",
            "model": "m",
            "task": "t",
            "problem_id": [f"p{i}" for i in range(n)],
            "n_failed_rollouts": rng.integers(1, 10, n).astype(float),
            "spread": rng.uniform(0, 1, n),
            "concentration": rng.normal(2, 0.3, n),
            "logit_dispersion": rng.normal(-0.8, 0.1, n),
        }
    )
    for op in OPERATORS:
        frame[op] = rng.integers(0, 21, n) / 20
    return frame


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip(tmp_path, suffix):
    frame = _frame()
    frame.loc[2, "local_temp"] = np.nan  # not assayed survives the trip
    path = write_profiles(frame, tmp_path / f"p{suffix}")
    table = read_profiles(path)
    assert len(table) == 5 and table.cells == ["m|t"]
    pd.testing.assert_frame_equal(table.frame, frame, check_dtype=False)
    assert np.isnan(table.rescue()[2, OPERATORS.index("local_temp")])


def _csv(tmp_path, frame: pd.DataFrame):
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)
    return path


def _error(path, schema=None) -> InputError:
    with pytest.raises(InputError) as info:
        read_profiles(path, schema)
    return info.value


def test_missing_column_names_file_header_and_column(tmp_path):
    path = _csv(tmp_path, _frame().drop(columns="dense_steer"))
    err = _error(path, ProfileSchema(operators=OPERATORS))
    assert (err.path, err.line, err.column) == (str(path), 1, "dense_steer")
    assert "missing operator column" in err.message


def test_missing_configured_feature(tmp_path):
    err = _error(_csv(tmp_path, _frame()), ProfileSchema.from_options("outcome"))
    assert err.column == "answer_entropy" and "missing feature column" in err.message


def test_non_numeric_value_is_located(tmp_path):
    frame = _frame().astype({"concentration": object})
    frame.loc[3, "concentration"] = "high"
    err = _error(_csv(tmp_path, frame))
    assert (err.line, err.column) == (5, "concentration")  # header is line 1, row 3 is line 5
    assert "'high'" in err.message


def test_rate_outside_unit_interval(tmp_path):
    frame = _frame()
    frame.loc[1, "retry"] = 1.5
    err = _error(_csv(tmp_path, frame))
    assert (err.line, err.column) == (3, "retry")
    assert "1.5" in err.message and "np.float64" not in err.message


def test_duplicate_cell_problem(tmp_path):
    frame = _frame()
    frame.loc[4, "problem_id"] = "p1"
    err = _error(_csv(tmp_path, frame))
    assert (err.line, err.column) == (6, "problem_id") and "duplicate" in err.message


def test_missing_feature_value(tmp_path):
    frame = _frame()
    frame.loc[0, "spread"] = np.nan
    err = _error(_csv(tmp_path, frame))
    assert (err.line, err.column) == (2, "spread") and "missing value" in err.message


def test_empty_file_and_header_only(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "empty" in _error(empty).message
    header = tmp_path / "header.csv"
    header.write_text(",".join(_frame().columns) + "\n")
    assert "no rows" in _error(header).message
    assert "no such file" in _error(tmp_path / "absent.csv").message


def test_parquet_errors_use_rows(tmp_path):
    frame = _frame()
    frame.loc[2, "sparse_steer"] = -0.1
    path = tmp_path / "p.parquet"
    frame.to_parquet(path)
    err = _error(path)
    assert (err.row, err.line, err.column) == (3, None, "sparse_steer")
    garbage = tmp_path / "g.parquet"
    garbage.write_bytes(b"not parquet at all")
    assert "cannot read as Parquet" in _error(garbage).message


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    class Boom(pd.DataFrame):
        def to_csv(self, *a, **k):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_profiles(Boom(_frame()), tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


BAD = {
    "non-numeric": ("spread", "x1"),
    "rate above 1": ("retry", 2.0),
    "rate below 0": ("dense_steer", -0.5),
    "missing feature": ("concentration", None),
}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(1, 30),
    data=st.data(),
    kind=st.sampled_from(sorted(BAD)),
    parquet=st.booleans(),
)
def test_any_single_bad_value_is_located_exactly(tmp_path, n, data, kind, parquet):
    row = data.draw(st.integers(0, n - 1))
    column, value = BAD[kind]
    frame = _frame(n).astype({column: object})
    frame.loc[row, column] = value
    path = tmp_path / f"bad{'.parquet' if parquet else '.csv'}"
    if parquet:
        frame[column] = frame[column].astype(str if kind == "non-numeric" else float)
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    # explicit: with one row, an emptied feature column would declare no feature at all
    err = _error(path, ProfileSchema(features=FEATURES))
    assert err.column == column and err.path == str(path)
    assert (err.row, err.line) == ((row + 1, None) if parquet else (None, row + 2))
