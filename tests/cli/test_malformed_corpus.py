"""The malformed-input corpus: every command, fed what a new user might feed it, says so cleanly.

Each case builds its inputs in a fresh folder, runs one ``failtrace`` command in-process (click's
CliRunner, from that folder, so a default ``./mlflow.db`` would land there too) and asserts what the
README promises for bad input: exit code 2, exactly one ``Error:`` line (the last) naming what is
wrong, no traceback, nothing on stdout, no file or folder created anywhere in the case's folder
(no ``mlflow.db`` either), and every input byte for byte as it was.

Cases are grouped by what goes wrong: broken profile tables (for ``analyze``, ``compare`` and
``log``, as CSV and Parquet), broken rollouts and run folders (``profile``), damaged repair
checkpoints, outputs that would overwrite or enter an input, names that are paths, versions that
are not integers, settings that are not finite numbers, a secret in a misspelt argument,
permission errors and symlink loops. A Hypothesis test adds randomly placed corruptions.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from malformed import (
    ROW,
    STAMP,
    TASK,
    Build,
    checkpoint_header,
    good_frame,
    inspect_log,
    renamed,
    rollouts,
    run_case,
    run_folder,
    set_value,
    sidecar,
    snapshot,
    where,
    write_jsonl,
    write_table,
)

from lm_failtrace.cli import main
from lm_failtrace.repair.runner import RepairConfig


@dataclass(frozen=True)
class Case:
    id: str
    build: Build


CASES: list[Case] = []


def case(name: str) -> Callable[[Build], Build]:
    def register(build: Build) -> Build:
        CASES.append(Case(name, build))
        return build

    return register


# --- broken profile tables ---------------------------------------------------------------------


#: name -> (corruption of a good table, the column of the error at ROW or None when the error
#: is not at ROW, the text of the message)
TABLE_CORRUPTIONS: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], str | None, str]] = {
    "non_numeric_rate": (lambda f: set_value(f, "retry", "x1"), "retry", "non-numeric value 'x1'"),
    "rate_above_1": (lambda f: set_value(f, "retry", 1.5), "retry", "rate 1.5 is outside [0, 1]"),
    "rate_below_0": (
        lambda f: set_value(f, "dense_steer", -0.1),
        "dense_steer",
        "rate -0.1 is outside [0, 1]",
    ),
    "missing_feature": (lambda f: set_value(f, "spread", None), "spread", "missing value"),
    "infinite_feature": (
        lambda f: set_value(f, "concentration", float("inf")),
        "concentration",
        "feature value inf is not finite",
    ),
    "missing_identifier": (
        lambda f: set_value(f, "problem_id", None),
        "problem_id",
        "missing identifier",
    ),
    "nul_in_problem_id": (
        lambda f: set_value(f, "problem_id", "gsm8k_\x00_1"),
        "problem_id",
        "control character in an identifier: 'gsm8k_\\x00_1'",
    ),
    "escape_in_model": (
        lambda f: renamed(f, "sft\x1b[31m"),
        None,
        "control character in an identifier",
    ),
    "newline_in_task": (
        lambda f: f.assign(task="gsm\n8k", cell=f["model"] + "|gsm\n8k"),
        None,
        "control character in an identifier",
    ),
    "pipe_in_model": (lambda f: renamed(f, "a|b"), None, "a model name cannot hold '|'"),
    "cell_not_model_task": (
        lambda f: set_value(f, "cell", "other|gsm8k"),
        "cell",
        "cell 'other|gsm8k' is not model|task of its row",
    ),
    "more_failed_than_rollouts": (
        lambda f: set_value(f, "n_failed_rollouts", 60),
        "n_failed_rollouts",
        "60.0 failed rollouts, more than the row's n_rollouts",
    ),
    "pass_rate_one": (
        lambda f: set_value(f, "pass_rate", 1.0),
        "pass_rate",
        "pass rate 1.0: a unit that never failed is not a failure unit",
    ),
    "no_failed_rollouts": (
        lambda f: set_value(f, "n_failed_rollouts", 0),
        "n_failed_rollouts",
        "expected a whole number >= 1 (a failure unit), got 0.0",
    ),
    "fractional_rollouts": (
        lambda f: set_value(f, "n_rollouts", 2.5),
        "n_rollouts",
        "expected a whole number >= 1 (a failure unit), got 2.5",
    ),
    "duplicate_unit": (
        lambda f: pd.concat([f.iloc[:ROW], f.iloc[[0]], f.iloc[ROW + 1 :]], ignore_index=True),
        "problem_id",
        "duplicate (cell, problem_id)",
    ),
    "missing_id_column": (
        lambda f: f.drop(columns=["problem_id"]),
        None,
        "missing identifier column (columns present: cell, model, task, n_rollouts",
    ),
    "no_rows": (lambda f: f.iloc[:0], None, "the table has no rows"),
    "boolean_feature": (lambda f: f.assign(spread=True), None, "column 'spread'"),
}


def _table_case(command: str, corruption: str, suffix: str) -> Build:
    corrupt, column, expected = TABLE_CORRUPTIONS[corruption]

    def build(root: Path) -> tuple[list[str], tuple[str, ...]]:
        bad = write_table(corrupt(good_frame()), root / f"bad{suffix}")
        located = f"{bad}, {where(suffix)}, column {column!r}: " if column else f"{bad}"
        args = {
            "analyze": ["analyze", str(bad), "--repeats", "2"],
            "compare": ["compare", str(write_table(good_frame(), root / f"ok{suffix}")), str(bad)],
            "log": ["log", str(bad), "--model-name", "m", "--checkpoint", "file:///ckpt/m"],
        }[command]
        return args, (located, expected)

    return build


for _command in ("analyze", "compare", "log"):
    for _corruption in TABLE_CORRUPTIONS:
        for _suffix in (".csv", ".parquet"):
            if _command != "analyze" and _suffix == ".parquet" and _corruption != "pass_rate_one":
                continue  # the reader is shared: one format per command is enough beyond analyze
            _id = f"{_command}-{_corruption}{_suffix}"
            CASES.append(Case(_id, _table_case(_command, _corruption, _suffix)))


@case("analyze-empty-file")
def _(root: Path) -> tuple[list[str], str]:
    (root / "empty.csv").write_bytes(b"")
    return ["analyze", "empty.csv"], "empty.csv: the file is empty"


@case("analyze-truncated-parquet")
def _(root: Path) -> tuple[list[str], str]:
    whole = write_table(good_frame(), root / "whole.parquet").read_bytes()
    (root / "cut.parquet").write_bytes(whole[: len(whole) // 2])
    (root / "whole.parquet").unlink()
    return ["analyze", "cut.parquet"], "cut.parquet: cannot read as Parquet"


@case("analyze-truncated-csv")
def _(root: Path) -> tuple[list[str], str]:
    text = good_frame().to_csv(index=False)
    (root / "cut.csv").write_text(text[: text.index("\n", len(text) // 2) + 12], encoding="utf-8")
    return ["analyze", "cut.csv"], "cut.csv"


@case("analyze-utf16-csv")
def _(root: Path) -> tuple[list[str], str]:
    (root / "u16.csv").write_bytes(good_frame().to_csv(index=False).encode("utf-16"))
    return ["analyze", "u16.csv"], "u16.csv"


@case("analyze-latin1-csv")
def _(root: Path) -> tuple[list[str], str]:
    frame = set_value(good_frame(), "problem_id", "gsm8k_é")
    (root / "l1.csv").write_bytes(frame.to_csv(index=False).encode("latin-1"))
    return ["analyze", "l1.csv"], "l1.csv: cannot read as CSV"


@case("analyze-binary-as-csv")
def _(root: Path) -> tuple[list[str], str]:
    (root / "noise.csv").write_bytes(bytes(range(256)) * 8)
    return ["analyze", "noise.csv"], "noise.csv"


@case("analyze-text-as-parquet")
def _(root: Path) -> tuple[list[str], str]:
    (root / "t.parquet").write_text("cell,model\n", encoding="utf-8")
    return ["analyze", "t.parquet"], "t.parquet: cannot read as Parquet"


@case("analyze-damaged-schema-metadata")
def _(root: Path) -> tuple[list[str], str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = pa.Table.from_pandas(good_frame(), preserve_index=False)
    data = data.replace_schema_metadata({b"lm_failtrace.schema": b"{not json"})
    pq.write_table(data, root / "meta.parquet")
    return ["analyze", "meta.parquet"], "unreadable schema in the metadata entry"


@case("analyze-missing-file")
def _(root: Path) -> tuple[list[str], str]:
    return ["analyze", "absent.csv"], "absent.csv: no such file"


@case("analyze-symlink-loop-input")
def _(root: Path) -> tuple[list[str], str]:
    (root / "loop.csv").symlink_to("loop.csv")
    return ["analyze", "loop.csv"], "loop.csv"


@case("analyze-unknown-cell")
def _(root: Path) -> tuple[list[str], str]:
    write_table(good_frame(), root / "p.csv")
    return ["analyze", "p.csv", "--cell", "nope|x"], "unknown cell 'nope|x'"


@case("analyze-missing-feature-asked-for")
def _(root: Path) -> tuple[list[str], str]:
    write_table(good_frame(), root / "p.csv")
    return ["analyze", "p.csv", "--features", "answer_entropy"], "'answer_entropy'"


@case("analyze-plot-is-the-input")
def _(root: Path) -> tuple[list[str], str]:
    write_table(good_frame(), root / "p.csv")
    return ["analyze", "p.csv", "--plot", "p.csv"], "Invalid value for '--plot'"


@case("analyze-plot-figure-is-the-input")
def _(root: Path) -> tuple[list[str], str]:
    # a table that happens to be named like a figure, in the plot folder: never overwritten
    good_frame().to_csv(root / "frontier_sft0p6b_gsm8k.png", index=False)
    args = ["analyze", "frontier_sft0p6b_gsm8k.png", "--plot", ".", "--repeats", "2"]
    return args, "is the input frontier_sft0p6b_gsm8k.png itself"


@case("analyze-plot-under-a-file")
def _(root: Path) -> tuple[list[str], str]:
    write_table(good_frame(), root / "p.csv")
    (root / "blocker").write_text("x", encoding="utf-8")
    return ["analyze", "p.csv", "--plot", "blocker/figs"], "blocker is a file, not a folder"


@case("analyze-folds-1")
def _(root: Path) -> tuple[list[str], str]:
    write_table(good_frame(), root / "p.csv")
    return ["analyze", "p.csv", "--folds", "1"], "--folds"


# --- compare: outputs and versions -----------------------------------------------------------


def _two_tables(root: Path) -> None:
    write_table(good_frame(), root / "old.csv")
    write_table(good_frame(20), root / "new.csv")


@case("compare-output-is-old")
def _(root: Path) -> tuple[list[str], str]:
    _two_tables(root)
    return ["compare", "old.csv", "new.csv", "-o", "old.csv"], "--output, old.csv: is the input"


@case("compare-output-is-new-via-symlink")
def _(root: Path) -> tuple[list[str], str]:
    _two_tables(root)
    (root / "page.html").symlink_to("new.csv")
    return ["compare", "old.csv", "new.csv", "-o", "page.html"], "is the input new.csv itself"


@case("compare-output-is-a-hard-link-of-new")
def _(root: Path) -> tuple[list[str], str]:
    _two_tables(root)
    os.link(root / "new.csv", root / "page.html")
    return ["compare", "old.csv", "new.csv", "-o", "page.html"], "is the input new.csv itself"


@case("compare-output-is-a-folder")
def _(root: Path) -> tuple[list[str], str]:
    _two_tables(root)
    (root / "pages").mkdir()
    return ["compare", "old.csv", "new.csv", "-o", "pages"], "pages"


@case("compare-output-under-a-file")
def _(root: Path) -> tuple[list[str], str]:
    _two_tables(root)
    return ["compare", "old.csv", "new.csv", "-o", "old.csv/c.html"], "is a file, not a folder"


@case("compare-output-symlink-loop")
def _(root: Path) -> tuple[list[str], str]:
    _two_tables(root)
    (root / "loop.html").symlink_to("loop.html")
    return ["compare", "old.csv", "new.csv", "-o", "loop.html"], "cannot resolve the path"


@case("compare-different-tasks")
def _(root: Path) -> tuple[list[str], str]:
    _two_tables(root)
    other = good_frame().assign(task="math", cell=lambda f: f["model"] + "|math")
    write_table(other, root / "math.csv")
    return ["compare", "old.csv", "math.csv"], "Error"


BAD_VERSION_PAIRS = [("1", "abc"), ("0", "2"), ("-1", "2"), ("1.5", "2")]
BAD_VERSIONS = ["abc", "0", "-3", "2.0", ""]
BAD_MODEL_VERSIONS = ["abc", "0", "9x"]
BAD_TEMPERATURES = ["nan", "inf", "-inf", "-1", "NaN"]


@pytest.mark.parametrize("versions", BAD_VERSION_PAIRS)
def test_compare_versions_are_integers(versions, tmp_path, monkeypatch) -> None:
    args = ["compare", "--model-name", "m", "--versions", *versions]
    run_case(lambda root: (args, "--versions"), tmp_path, monkeypatch)


@pytest.mark.parametrize("version", BAD_VERSIONS)
def test_promote_version_is_an_integer(version, tmp_path, monkeypatch) -> None:
    args = ["promote", "--model-name", "m", "--version", version, "--alias", "champion"]
    run_case(lambda root: (args, "--version"), tmp_path, monkeypatch)


@pytest.mark.parametrize("version", BAD_MODEL_VERSIONS)
def test_log_model_version_is_an_integer(version, tmp_path, monkeypatch) -> None:
    def build(root: Path) -> tuple[list[str], str]:
        write_table(good_frame(), root / "p.csv")
        return ["log", "p.csv", "--model-name", "m", "--model-version", version], "--model-version"

    run_case(build, tmp_path, monkeypatch)


# --- log: what is checked before MLflow is touched ---------------------------------------------


def _log_args(source: str, *extra: str) -> list[str]:
    return ["log", source, "--model-name", "m", "--checkpoint", "file:///ckpt/m", *extra]


@case("log-lm-eval-run-not-a-run")
def _(root: Path) -> tuple[list[str], str]:
    write_table(good_frame(), root / "p.csv")
    (root / "notrun").mkdir()
    (root / "notrun" / "notes.txt").write_text("hello", encoding="utf-8")
    return _log_args("p.csv", "--lm-eval-run", "notrun"), "--lm-eval-run, notrun: not an lm-eval"


@case("log-lm-eval-run-garbage-results")
def _(root: Path) -> tuple[list[str], str]:
    write_table(good_frame(), root / "p.csv")
    (root / "run" / "m").mkdir(parents=True)
    (root / "run" / "m" / f"results_{STAMP}.json").write_text("{ not json", encoding="utf-8")
    return _log_args("p.csv", "--lm-eval-run", "run"), "not lm-eval's results JSON"


@case("log-lm-eval-run-results-not-an-object")
def _(root: Path) -> tuple[list[str], str]:
    write_table(good_frame(), root / "p.csv")
    (root / "run").mkdir()
    (root / "run" / f"results_{STAMP}.json").write_text("[1, 2]", encoding="utf-8")
    return _log_args("p.csv", "--lm-eval-run", "run"), "(an object with 'config' and 'results')"


@case("log-lm-eval-run-results-without-config")
def _(root: Path) -> tuple[list[str], str]:
    write_table(good_frame(), root / "p.csv")
    (root / "run").mkdir()
    (root / "run" / f"results_{STAMP}.json").write_text('{"results": {}}', encoding="utf-8")
    return _log_args("p.csv", "--lm-eval-run", "run"), "not lm-eval's results JSON"


@case("log-lm-eval-run-bad-encoding")
def _(root: Path) -> tuple[list[str], str]:
    write_table(good_frame(), root / "p.csv")
    (root / "run").mkdir()
    (root / "run" / f"results_{STAMP}.json").write_bytes(b'{"config": "\xff\xfe"}')
    return _log_args("p.csv", "--lm-eval-run", "run"), "not lm-eval's results JSON"


@case("log-database-inside-the-lm-eval-run")
def _(root: Path) -> tuple[list[str], str]:
    write_table(good_frame(), root / "p.csv")
    (root / f"results_{STAMP}.json").write_text('{"config": {}, "results": {}}', "utf-8")
    return _log_args("p.csv", "--lm-eval-run", "."), "lies inside the input folder ."


@case("log-database-is-the-source")
def _(root: Path) -> tuple[list[str], str]:
    write_table(good_frame(), root / "mlflow.db")
    return _log_args("mlflow.db"), "--tracking-uri"


@case("log-explicit-database-is-the-source")
def _(root: Path) -> tuple[list[str], str]:
    write_table(good_frame(), root / "p.csv")
    return _log_args("p.csv", "--tracking-uri", f"sqlite:///{root / 'p.csv'}"), "is the input"


@case("log-run-folder-without-rescue-rates")
def _(root: Path) -> tuple[list[str], str]:
    runs = run_folder(root)
    return _log_args(str(runs)), "the run has no rescue rates"


@case("log-two-models")
def _(root: Path) -> tuple[list[str], str]:
    frame = pd.concat([good_frame(), renamed(good_frame(), "other")], ignore_index=True)
    write_table(frame, root / "two.csv")
    return _log_args("two.csv"), "the input holds several models"


@case("log-unknown-task")
def _(root: Path) -> tuple[list[str], str]:
    write_table(good_frame(), root / "p.csv")
    return _log_args("p.csv", "--task", "math"), "--task"


# --- profile: rollouts and run folders ---------------------------------------------------------


def _bad_rollouts(change: Callable[[list[dict]], list], expected: str) -> Build:
    def build(root: Path) -> tuple[list[str], str]:
        path = write_jsonl(root / "rollouts.jsonl", change(rollouts()))
        return ["profile", str(path), "-o", "out.csv"], expected

    return build


def _edit(index: int, **fields: object) -> Callable[[list[dict]], list]:
    def change(rows: list[dict]) -> list:
        rows[index] = {**rows[index], **fields}
        return rows

    return change


ROLLOUT_CORRUPTIONS: dict[str, tuple[Callable[[list[dict]], list], str]] = {
    "nul_in_model": (_edit(0, model="m\x00"), "line 1, column 'model': control character"),
    "escape_in_task": (_edit(0, task="t\x1b"), "line 1, column 'task': control character"),
    "tab_in_problem_id": (_edit(0, problem_id="p\t0"), "column 'problem_id': control character"),
    "pipe_in_model": (_edit(0, model="a|b"), "a model name cannot hold '|'"),
    "c1_control_in_model": (_edit(0, model="m\x85"), "control character"),
    "correct_is_text": (_edit(3, correct="yes"), "line 4, column 'correct'"),
    "missing_answer_field": (
        lambda rows: [{k: v for k, v in r.items() if k != "answer"} for r in rows],
        "line 1, column 'answer': missing field",
    ),
    "negative_tokens": (_edit(2, generated_tokens=-1), "column 'generated_tokens'"),
    "unknown_finish_reason": (_edit(2, finish_reason="eos"), "column 'finish_reason'"),
    "duplicate_repeat": (_edit(1, repeat=0), "duplicate (problem_id, repeat)"),
    "repeat_out_of_range": (_edit(1, repeat=-2), "column 'repeat'"),
    "logit_not_finite": (_edit(1, spread=float("nan")), "expected a finite number"),
    "repeats_disagree": (lambda rows: rows[:-1], "repeats disagree across docs"),
    "not_an_object": (lambda rows: [*rows[:5], [1, 2], *rows[5:]], "line 6: expected a JSON"),
    "no_rows": (lambda rows: [], "the file is empty"),
}


for _name, (_change, _expected) in ROLLOUT_CORRUPTIONS.items():
    CASES.append(Case(f"profile-{_name}", _bad_rollouts(_change, _expected)))


@case("profile-truncated-line")
def _(root: Path) -> tuple[list[str], str]:
    text = write_jsonl(root / "r.jsonl", rollouts()).read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    (root / "r.jsonl").write_text("".join(lines[:3]) + lines[3][:25] + "\n" + "".join(lines[4:]))
    return ["profile", "r.jsonl", "-o", "out.csv"], "r.jsonl, line 4: invalid JSON"


@case("profile-truncated-file")
def _(root: Path) -> tuple[list[str], str]:
    text = write_jsonl(root / "r.jsonl", rollouts()).read_text(encoding="utf-8")
    cut = text.index("\n", len(text) // 2) - 10  # inside a line, as a full disk leaves it
    (root / "r.jsonl").write_text(text[:cut], encoding="utf-8")
    line = text[:cut].count("\n") + 1
    return ["profile", "r.jsonl", "-o", "out.csv"], f"r.jsonl, line {line}: invalid JSON"


@case("profile-latin1-line")
def _(root: Path) -> tuple[list[str], str]:
    path = write_jsonl(root / "r.jsonl", rollouts())
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"answer": "2"', b'"answer": "\xe9"')
    path.write_bytes(b"".join(lines))
    return ["profile", "r.jsonl", "-o", "out.csv"], "r.jsonl, line 3: not UTF-8 text"


@case("profile-utf16-file")
def _(root: Path) -> tuple[list[str], str]:
    text = "".join(json.dumps(r) + "\n" for r in rollouts())
    (root / "r.jsonl").write_bytes(text.encode("utf-16"))
    return ["profile", "r.jsonl", "-o", "out.csv"], "r.jsonl, line 1"


@case("profile-stock-samples-log")
def _(root: Path) -> tuple[list[str], str]:
    path = root / f"samples_gsm8k_{STAMP}.jsonl"
    write_jsonl(path, [{"doc_id": 0, "filter": "none", "resps": [["x"]]}])
    return ["profile", path.name, "-o", "out.csv"], "is not a failtrace task"


@case("profile-results-json-garbage")
def _(root: Path) -> tuple[list[str], str]:
    runs = run_folder(root)
    (runs / "m" / f"results_{STAMP}.json").write_text("{oops", encoding="utf-8")
    return ["profile", str(runs), "-o", "out.csv"], "invalid JSON"


@case("profile-folder-without-runs")
def _(root: Path) -> tuple[list[str], str]:
    (root / "empty_run" / "m").mkdir(parents=True)
    return ["profile", "empty_run", "-o", "out.csv"], "no lm-eval samples here"


@case("profile-symlink-loop-input")
def _(root: Path) -> tuple[list[str], str]:
    (root / "loop").symlink_to("loop")
    return ["profile", "loop", "-o", "out.csv"], "loop"


@case("profile-output-is-the-input")
def _(root: Path) -> tuple[list[str], str]:
    pd.DataFrame(rollouts()).to_parquet(root / "in.parquet", index=False)
    return ["profile", "in.parquet", "-o", "in.parquet"], "--output, in.parquet: is the input"


@case("profile-output-is-the-input-pq")
def _(root: Path) -> tuple[list[str], str]:
    pd.DataFrame(rollouts()).to_parquet(root / "in.pq", index=False)
    return ["profile", "in.pq", "-o", "./in.pq"], "is the input in.pq itself"


@case("profile-output-inside-the-run-folder")
def _(root: Path) -> tuple[list[str], str]:
    run_folder(root)
    return ["profile", "runs", "-o", "runs/m/profiles.csv"], "lies inside the input folder runs"


@case("profile-output-named-like-a-side-car")
def _(root: Path) -> tuple[list[str], str]:
    run_folder(root)
    side = str(sidecar(root).relative_to(root))
    args = ["profile", side, "-o", f"runs/m/rollouts_{TASK}_2027-01-01T00-00-00.parquet"]
    return args, "is named like an lm-eval run file"


@case("profile-of-a-run-file-over-its-results-json")
def _(root: Path) -> tuple[list[str], str]:
    run_folder(root)
    side = str(sidecar(root).relative_to(root))
    args = ["profile", side, "-o", f"runs/m/results_{STAMP}.json"]
    return args, f"is the input runs/m/results_{STAMP}.json itself"


@case("profile-output-over-the-results-json")
def _(root: Path) -> tuple[list[str], str]:
    run_folder(root)
    args = ["profile", "runs", "-o", f"runs/m/results_{STAMP}.json"]
    return args, "lies inside the input folder runs"


@case("profile-output-symlink-into-the-run")
def _(root: Path) -> tuple[list[str], str]:
    run_folder(root)
    (root / "link.csv").symlink_to(root / "runs" / "m" / "p.csv")
    return ["profile", "runs", "-o", "link.csv"], "lies inside the input folder runs"


@case("profile-output-unknown-suffix")
def _(root: Path) -> tuple[list[str], str]:
    run_folder(root)
    return ["profile", "runs", "-o", "p.json"], "unknown output type '.json'"


@case("profile-output-is-a-folder")
def _(root: Path) -> tuple[list[str], str]:
    run_folder(root)
    (root / "p.csv").mkdir()
    return ["profile", "runs", "-o", "p.csv"], "p.csv"


@case("profile-output-symlink-loop")
def _(root: Path) -> tuple[list[str], str]:
    run_folder(root)
    (root / "loop.csv").symlink_to("loop.csv")
    return ["profile", "runs", "-o", "loop.csv"], "--output, loop.csv: cannot resolve the path"


# --- profile: Inspect logs, rescue columns from other runs, ladders ----------------------------


@case("profile-inspect-garbage-log")
def _(root: Path) -> tuple[list[str], str]:
    (root / "broken.eval").write_bytes(b"PK\x03\x04 not a zip at all" * 10)
    return ["profile", "broken.eval", "-o", "out.csv"], "broken.eval: cannot read as an Inspect"


@case("profile-inspect-truncated-log")
def _(root: Path) -> tuple[list[str], str]:
    whole = inspect_log(root / "whole.eval").read_bytes()
    (root / "cut.eval").write_bytes(whole[: len(whole) // 2])
    (root / "whole.eval").unlink()
    return ["profile", "cut.eval", "-o", "out.csv"], "cut.eval: cannot read as an Inspect"


@case("profile-inspect-json-that-is-not-a-log")
def _(root: Path) -> tuple[list[str], str]:
    (root / "notes.json").write_text('{"hello": "world"}', encoding="utf-8")
    return ["profile", "notes.json", "-o", "out.csv"], "notes.json: cannot read as an Inspect"


@case("profile-inspect-log-without-scores")
def _(root: Path) -> tuple[list[str], str]:
    inspect_log(root / "unscored.eval", scored=False)
    return ["profile", "unscored.eval", "-o", "out.csv"], "unscored.eval: the log has no scores"


@case("profile-inspect-unknown-scorer")
def _(root: Path) -> tuple[list[str], str]:
    inspect_log(root / "log.eval")
    args = ["profile", "log.eval", "--scorer", "nope", "-o", "out.csv"]
    return args, ("--scorer, log.eval: no scorer 'nope'", "its scorers: match")


@case("profile-inspect-partial-credit")
def _(root: Path) -> tuple[list[str], str]:
    inspect_log(root / "log.eval", partial=True)
    return ["profile", "log.eval", "-o", "out.csv"], ("--score-value, log.eval", "score 'P'")


@case("profile-score-value-not-0-or-1")
def _(root: Path) -> tuple[list[str], str]:
    inspect_log(root / "log.eval", partial=True)
    args = ["profile", "log.eval", "--score-value", "P=0.5", "-o", "out.csv"]
    return args, ("--score-value", "say 1 (correct) or 0 (incorrect)")


@case("profile-folder-with-lm-eval-runs-and-inspect-logs")
def _(root: Path) -> tuple[list[str], str]:
    runs = run_folder(root)
    inspect_log(runs / "m" / "log.eval")
    return ["profile", "runs", "-o", "out.csv"], "holds both lm-eval runs and Inspect logs"


def _rescue_case(other_rows: list[dict] | None, *extra: str, expected: str | tuple[str, ...],
                 name: str = "other") -> Build:  # fmt: skip
    """``profile r.jsonl --rescue NAME=other.jsonl`` with ``other_rows`` (None: no such file)."""

    def build(root: Path) -> tuple[list[str], str | tuple[str, ...]]:
        write_jsonl(root / "r.jsonl", rollouts())
        if other_rows is not None:
            write_jsonl(root / "other.jsonl", other_rows)
        return ["profile", "r.jsonl", "--rescue", f"{name}=other.jsonl", *extra], expected

    return build


def _retask(rows: list[dict], task: str) -> list[dict]:
    return [{**r, "task": task} for r in rows]


RESCUE_CASES: dict[str, Build] = {
    "without-equals": lambda root: (["profile", "r.jsonl", "--rescue", "long"],
                                    ("Invalid value for --rescue", "'long' is not NAME=OTHER")),
    "missing-file": _rescue_case(None, expected="--rescue, other.jsonl: no such file or directory"),
    "mismatched-tasks": _rescue_case(
        _retask(rollouts(model="big"), "gsm8k"),
        expected=("--rescue, other.jsonl: task 'failtrace_arith' of the input is not in it",
                  "(its tasks: gsm8k)", "--match-task"),
    ),
    "unknown-match-task": _rescue_case(
        rollouts(model="big"), "--match-task", "gsm8k=arith",
        expected="--match-task: task 'gsm8k' is not a task of the input",
    ),
    "ids-do-not-match": _rescue_case(
        [{**r, "problem_id": "x" + r["problem_id"]} for r in rollouts(model="big")],
        expected=("--rescue, other.jsonl: none of the 4 failure units", "'xp0'"),
    ),
    "name-of-a-profile-column": _rescue_case(
        rollouts(model="big"), name="pass_rate",
        expected="--rescue: cannot name a rescue column 'pass_rate'",
    ),
    "name-not-an-identifier": _rescue_case(
        rollouts(model="big"), name="high effort", expected="use letters, digits and underscores"
    ),
    "several-models-in-other": _rescue_case(
        rollouts(model="big") + rollouts(model="huge"), expected="several models (big, huge)"
    ),
    "single-rollout-for-retry": lambda root: (
        ["profile", str(write_jsonl(root / "one.jsonl", rollouts(repeats=1))), "--rescue",
         f"big={write_jsonl(root / 'big.jsonl', rollouts(model='big'))}"],
        "has 1 rollout: retry's rescue is estimated from a failure unit's other rollouts",
    ),
    "output-is-the-other-run": lambda root: (
        ["profile", str(write_jsonl(root / "r.jsonl", rollouts())), "--rescue",
         f"big={write_table(pd.DataFrame(rollouts(model='big')), root / 'big.parquet')}",
         "-o", str(root / "big.parquet")],
        "is the input",
    ),
}  # fmt: skip

for _name, _build in RESCUE_CASES.items():
    CASES.append(Case(f"profile-rescue-{_name}", _build))


@case("profile-ladder-on-an-lm-eval-run")
def _(root: Path) -> tuple[list[str], str]:
    run_folder(root)
    return ["profile", "runs", "--ladder"], "runs: --ladder reads a folder of Inspect eval logs"


@case("profile-ladder-of-one-setting")
def _(root: Path) -> tuple[list[str], str]:
    inspect_log(root / "logs" / "low.eval")
    return ["profile", "logs", "--ladder"], "a ladder's logs differ in exactly one setting"


# --- repair: outputs and checkpoints (all before any model is loaded) ---------------------------


def _repair(root: Path, *extra: str) -> list[str]:
    return ["repair", str(root / "runs"), "-o", str(root / "out.csv"), *extra]


def _result(**overrides: object) -> dict:
    ops = RepairConfig().operators
    return {**{op: 0.25 for op in ops}, **{f"{op}_tokens": 12.0 for op in ops}, **overrides}


def _checkpoint_case(lines: Callable[[dict], list[bytes]], expected: str) -> Build:
    def build(root: Path) -> tuple[list[str], str]:
        runs = run_folder(root)
        (root / "out.csv.partial.jsonl").write_bytes(b"".join(lines(checkpoint_header(runs))))
        return _repair(root), expected

    return build


def _line(doc: object) -> bytes:
    return json.dumps(doc).encode() + b"\n"


def _unit(problem: str = "p1", **result: object) -> bytes:
    return _line({"task": TASK, "problem_id": problem, "result": _result(**result)})


CHECKPOINTS: dict[str, tuple[Callable[[dict], list[bytes]], str]] = {
    "garbage_line": (lambda h: [_line(h), _unit(), b"#!@ garbage }\n"], "line 3: damaged"),
    "truncated_line": (lambda h: [_line(h), _unit()[:40] + b"\n", _unit("p3")], "line 2: damaged"),
    "bad_encoding": (lambda h: [_line(h), b'{"task": "\xff\xfe"}\n'], "line 2: damaged"),
    "header_garbage": (lambda h: [b"{{{\n", _unit()], "line 1: damaged"),
    "other_settings": (
        lambda h: [_line({**h, "config": {**h["config"], "trials": 9}}), _unit()],
        "other settings",
    ),
    "not_an_object": (lambda h: [_line(h), _line([1, 2, 3])], "expected an object with task"),
    "missing_operator": (
        lambda h: [_line(h), _line({"task": TASK, "problem_id": "p1", "result": {"retry": 0.5}})],
        "line 2: damaged checkpoint line (retry_tokens is None)",
    ),
    "rate_out_of_range": (lambda h: [_line(h), _unit(retry=1.5)], "(retry is 1.5)"),
    "negative_tokens": (lambda h: [_line(h), _unit(budget_tokens=-3.0)], "budget_tokens is -3.0"),
    "rate_is_text": (lambda h: [_line(h), _unit(local_temp="0.5")], "local_temp is '0.5'"),
}

for _name, (_lines, _expected) in CHECKPOINTS.items():
    CASES.append(Case(f"repair-checkpoint-{_name}", _checkpoint_case(_lines, _expected)))


def test_a_damaged_checkpoint_names_the_way_out(tmp_path, monkeypatch) -> None:
    build = CHECKPOINTS["garbage_line"][0]
    error = run_case(_checkpoint_case(build, "out.csv.partial.jsonl"), tmp_path, monkeypatch)
    assert error.endswith("pass --restart to discard the checkpoint and start over")


@case("repair-output-inside-the-run")
def _(root: Path) -> tuple[list[str], str]:
    runs = run_folder(root)
    args = ["repair", str(runs), "-o", str(runs / "m" / f"results_{STAMP}.json")]
    return args, "lies inside the input folder"


@case("repair-output-is-the-run")
def _(root: Path) -> tuple[list[str], str]:
    runs = run_folder(root)
    return ["repair", str(runs), "-o", str(runs)], "is a directory"


@case("repair-rescue-without-equals")
def _(root: Path) -> tuple[list[str], str]:
    run_folder(root)
    return _repair(root, "--rescue", "bigger"), "'bigger' is not NAME=OTHER"


@case("repair-rescue-names-a-repaired-operator")
def _(root: Path) -> tuple[list[str], str]:
    runs = run_folder(root)
    return _repair(root, "--rescue", f"budget={runs}"), "cannot name a rescue column 'budget'"


@case("repair-rescue-output-inside-the-other-run")
def _(root: Path) -> tuple[list[str], str]:
    run_folder(root)
    other = run_folder(root / "other")
    args = ["repair", str(root / "runs"), "-o", str(other / "out.csv"), "--rescue", f"o={other}"]
    return args, "lies inside the input folder"


@case("repair-output-is-the-run-through-a-symlink")
def _(root: Path) -> tuple[list[str], str]:
    runs = run_folder(root)
    (root / "out.csv").symlink_to(runs / "m" / "new.csv")
    return _repair(root), "lies inside the input folder"


@case("repair-output-named-like-a-side-car")
def _(root: Path) -> tuple[list[str], str]:
    run_folder(root)
    args = ["repair", "runs", "-o", f"rollouts_{TASK}_{STAMP}.parquet"]
    return args, "is named like an lm-eval run file"


@case("repair-output-unknown-suffix")
def _(root: Path) -> tuple[list[str], str]:
    run_folder(root)
    return ["repair", "runs", "-o", "out.txt"], "unknown output type '.txt'"


@case("repair-unknown-operator")
def _(root: Path) -> tuple[list[str], str]:
    run_folder(root)
    return _repair(root, "--operators", "retry,teleport"), "--operators: unknown operator(s)"


@case("repair-without-retry")
def _(root: Path) -> tuple[list[str], str]:
    run_folder(root)
    return _repair(root, "--operators", "budget"), "retry is required"


@case("repair-zero-trials")
def _(root: Path) -> tuple[list[str], str]:
    run_folder(root)
    return _repair(root, "--trials", "0"), "--trials"


@case("repair-model-args-without-equals")
def _(root: Path) -> tuple[list[str], str]:
    run_folder(root)
    return _repair(root, "--model-args", "pretrained=x,sk-secretvalue"), "part 2 has no '='"


@case("repair-folder-without-runs")
def _(root: Path) -> tuple[list[str], str]:
    (root / "runs").mkdir()
    return _repair(root), "no lm-eval samples here"


@case("repair-two-models")
def _(root: Path) -> tuple[list[str], str]:
    run_folder(root, rollouts() + rollouts(model="other"))
    return _repair(root), "repair one model at a time"


# --- make-task: names are not paths; settings are finite ----------------------------------------


def _make_task(*extra: str) -> list[str]:
    return ["make-task", "gsm8k", "-o", "tasks", *extra]


for _name in ("../evil", "a/b", "", ".hidden", "-dash", "has space", "nul\x00", "/abs"):
    CASES.append(
        Case(
            f"make-task-name-{_name.encode().hex()}",
            lambda root, n=_name: (_make_task("--name", n), "--name"),
        )
    )


@case("make-task-name-shadows-lm-eval")
def _(root: Path) -> tuple[list[str], str]:
    return _make_task("--name", "gsm8k"), "'gsm8k' is already a task of lm-eval"


@case("make-task-name-shadows-failtrace")
def _(root: Path) -> tuple[list[str], str]:
    return _make_task("--name", "failtrace_arith"), "is already a task of failtrace"


def test_make_task_never_writes_into_the_base_task_folder(tmp_path, monkeypatch) -> None:
    from lm_failtrace.record.make_task import find_base_task

    base_folder = find_base_task("gsm8k")[0].parent
    before = snapshot(base_folder)
    args = ["make-task", "gsm8k", "-o", str(base_folder), "--name", "gsm8k_v2"]
    run_case(lambda root: (args, "lies inside the input folder"), tmp_path, monkeypatch)
    assert snapshot(base_folder) == before


@pytest.mark.parametrize("value", BAD_TEMPERATURES)
def test_make_task_temperature_is_a_finite_number(value, tmp_path, monkeypatch) -> None:
    args = _make_task("--temperature", value)
    run_case(lambda root: (args, "--temperature"), tmp_path, monkeypatch)


@case("make-task-zero-repeats")
def _(root: Path) -> tuple[list[str], str]:
    return _make_task("--repeats", "0"), "--repeats"


@case("make-task-zero-max-gen-toks")
def _(root: Path) -> tuple[list[str], str]:
    return _make_task("--max-gen-toks", "0"), "--max-gen-toks"


@case("make-task-output-is-a-file")
def _(root: Path) -> tuple[list[str], str]:
    (root / "tasks").write_text("x", encoding="utf-8")
    return _make_task(), "-o"


@case("make-task-unknown-base")
def _(root: Path) -> tuple[list[str], str]:
    return ["make-task", "gsm8kk", "-o", "tasks"], "unknown lm-eval task 'gsm8kk'"


@case("make-task-multiple-choice-base")
def _(root: Path) -> tuple[list[str], str]:
    return ["make-task", "hellaswag", "-o", "tasks"], "failtrace needs generate_until"


# --- eval: a misspelt secret argument is refused by name, its value never shown -----------------

SECRET = "sk-never-printed-7"


def misspelt_key(root: Path) -> tuple[list[str], str]:
    from lm_failtrace.record.tasks import tasks_dir

    args = [
        "eval", "--model", "failtrace-local-completions",
        "--model_args", f"base_url=http://user:{SECRET}@127.0.0.1:9/v1/completions,apikey={SECRET}",
        "--tasks", TASK, "--include_path", str(tasks_dir()), "--limit", "1",
        "--log_samples", "--output_path", "out",
    ]  # fmt: skip
    return args, "unknown model argument(s) apikey"


@pytest.fixture
def lm_eval_logging() -> Iterator[None]:
    """lm-eval binds its log handler to the sys.stderr of its first run (here CliRunner's):
    put its logging back as it was, so later in-process runs do not write to a closed stream."""
    import logging

    import lm_eval.utils

    logger = logging.getLogger("lm_eval")
    saved = (list(logger.handlers), logger.propagate, lm_eval.utils._LOGGING_CONFIGURED)
    yield
    logger.handlers[:] = saved[0]
    logger.propagate, lm_eval.utils._LOGGING_CONFIGURED = saved[1], saved[2]


def test_a_misspelt_key_is_never_echoed(tmp_path, monkeypatch, capfd, lm_eval_logging) -> None:
    error = run_case(misspelt_key, tmp_path, monkeypatch)
    assert SECRET not in error
    assert SECRET not in "".join(capfd.readouterr())  # nor on the process's own streams


# --- permissions --------------------------------------------------------------------------------


@pytest.fixture
def shared_root() -> Iterator[Path]:
    """A folder ``nobody`` can enter (the test's tmp_path is root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="failtrace-corpus-")) / "unprivileged"
    folder.mkdir()
    folder.parent.chmod(0o755)
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder.parent)


def _unreadable(path: Path) -> Path:
    path.chmod(0o000)
    return path


def _read_only_folder(path: Path) -> Path:
    path.mkdir()
    path.chmod(0o555)
    return path


def _unreadable_table(root: Path) -> tuple[list[str], str]:
    return ["analyze", str(_unreadable(write_table(good_frame(), root / "p.csv")))], "denied"


def _unreadable_rollouts(root: Path) -> tuple[list[str], str]:
    path = _unreadable(write_jsonl(root / "r.jsonl", rollouts()))
    return ["profile", str(path), "-o", "o.csv"], "cannot read the file (Permission denied)"


def _table_into_read_only_folder(root: Path) -> tuple[list[str], str]:
    path = write_jsonl(root / "r.jsonl", rollouts())
    output = _read_only_folder(root / "ro") / "p.csv"
    return ["profile", str(path), "-o", str(output)], "cannot write here (Permission denied)"


def _page_into_read_only_folder(root: Path) -> tuple[list[str], str]:
    old = write_table(good_frame(), root / "a.csv")
    new = write_table(good_frame(20), root / "b.csv")
    page = _read_only_folder(root / "ro") / "c.html"
    return ["compare", str(old), str(new), "-o", str(page)], "cannot write here"


def _figures_into_read_only_folder(root: Path) -> tuple[list[str], str]:
    table = write_table(good_frame(), root / "p.csv")
    figures = _read_only_folder(root / "ro") / "figs"
    args = ["analyze", str(table), "--repeats", "2", "--plot", str(figures)]
    return args, "cannot create its folder (Permission denied)"


PERMISSION_CASES: dict[str, Build] = {
    "analyze-unreadable-table": _unreadable_table,
    "profile-unreadable-rollouts": _unreadable_rollouts,
    "profile-output-in-a-read-only-folder": _table_into_read_only_folder,
    "compare-page-in-a-read-only-folder": _page_into_read_only_folder,
    "analyze-plot-in-a-read-only-folder": _figures_into_read_only_folder,
}


@pytest.mark.parametrize("name", sorted(PERMISSION_CASES))
def test_permission_errors_are_input_errors(name, shared_root, tmp_path, monkeypatch) -> None:
    if os.geteuid() == 0:
        # As nobody, modules not yet imported may be unreadable (a root-only Python install):
        # the same command first runs as root on readable copies, importing what it needs.
        with monkeypatch.context() as patch:
            args, _ = PERMISSION_CASES[name](tmp_path)
            for path in tmp_path.rglob("*"):
                path.chmod(0o755)
            patch.chdir(tmp_path)
            CliRunner().invoke(main, [a.replace(str(shared_root), str(tmp_path)) for a in args])
    run_case(PERMISSION_CASES[name], shared_root, monkeypatch, unprivileged=True)


# --- the corpus ---------------------------------------------------------------------------------


def test_the_corpus_is_large_enough() -> None:
    parametrized = (
        sum(map(len, (BAD_VERSION_PAIRS, BAD_VERSIONS, BAD_MODEL_VERSIONS, BAD_TEMPERATURES)))
        + len(PERMISSION_CASES)
        + 3
    )  # + the base-folder, way-out and misspelt-key tests
    assert len({c.id for c in CASES}) == len(CASES)
    assert len(CASES) + parametrized >= 120


@pytest.mark.parametrize("entry", CASES, ids=[c.id for c in CASES])
def test_malformed_input_exits_2_and_writes_nothing(entry: Case, tmp_path, monkeypatch) -> None:
    run_case(entry.build, tmp_path, monkeypatch)


# --- randomly placed corruptions ----------------------------------------------------------------


@st.composite
def corrupted_tables(draw: st.DrawFn) -> tuple[pd.DataFrame, str, int, str]:
    """A good table with one bad value at a random row: (table, column, row, expected text)."""
    frame = good_frame(12)
    row = draw(st.integers(0, len(frame) - 1))
    kind = draw(st.sampled_from(["rate", "feature", "identifier", "count", "text"]))
    if kind == "rate":
        column = draw(st.sampled_from(["retry", "sparse_steer", "local_temp", "pass_rate"]))
        value = draw(st.one_of(st.floats(1.001, 1e9), st.floats(-1e9, -0.001)))
        expected = "outside [0, 1]"
    elif kind == "feature":  # (spread is a rate: an infinite one is out of range instead)
        value = draw(st.sampled_from([float("inf"), float("-inf"), None]))
        columns = ["concentration", "logit_dispersion", *(["spread"] if value is None else [])]
        column = draw(st.sampled_from(columns))
        expected = "not finite" if value is not None else "missing value"
    elif kind == "identifier":
        column = draw(st.sampled_from(["problem_id", "cell"]))
        printable = st.characters(blacklist_categories=("Cc", "Cs"))
        text = draw(st.text(printable, min_size=1, max_size=8))
        control = draw(st.sampled_from(["\x00", "\x07", "\x1b", "\x7f", "\x9b"]))
        value = text + control
        expected = "control character in an identifier"
    elif kind == "count":
        column = "n_failed_rollouts"
        value = draw(st.integers(51, 10**6))
        expected = "more than the row's n_rollouts"
    else:
        column = draw(st.sampled_from(["retry", "spread", "n_rollouts"]))
        value = draw(st.sampled_from(["x", "1..0", "one", "--"]))
        expected = "non-numeric value"
    return set_value(frame, column, value, row), column, row, expected


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(case_=corrupted_tables(), suffix=st.sampled_from([".csv", ".parquet"]))
def test_random_corruptions_are_located(case_, suffix: str, monkeypatch) -> None:
    frame, column, row, expected = case_
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)

        def build(root: Path) -> tuple[list[str], str]:
            bad = write_table(frame, root / f"bad{suffix}")
            return ["analyze", str(bad)], f"{where(suffix, row)}, column '{column}'"

        error = run_case(build, root, monkeypatch)
        assert expected in error
