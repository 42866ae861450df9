"""Malformed input: one message naming file and line/row/column, exit 2, no output file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from profile_fixtures import (
    ROLLOUTS,
    ROLLOUTS_M,
    STAMP,
    samples_lines,
    write_jsonl,
    write_parquet,
    write_run,
)

from lm_failtrace.cli import main


def _lines(tmp: Path, lines: list[str], name: str = "rollouts.jsonl") -> Path:
    path = tmp / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _dumped(**changes_at: dict) -> list[str]:
    """ROLLOUTS as JSON lines, with ``changes_at["lineN"]`` merged into line N (1-based)."""
    out = []
    for number, record in enumerate(ROLLOUTS, start=1):
        record = dict(record)
        for key, value in changes_at.get(f"line{number}", {}).items():
            if value is _DROP:
                record.pop(key)
            else:
                record[key] = value
        out.append(json.dumps(record))
    return out


_DROP = object()


def truncated(tmp: Path) -> tuple[Path, str, str]:
    lines = _dumped()
    text = "".join(line + "\n" for line in lines[:-1]) + lines[-1][:30]  # a crash mid-write
    path = tmp / "rollouts.jsonl"
    path.write_text(text, encoding="utf-8")
    return path, f"line {len(lines)}", "invalid JSON (a truncated line?): Unterminated string"


def invalid_json(tmp: Path) -> tuple[Path, str, str]:
    lines = _dumped()
    lines[2] = lines[2].replace('"answer"', "answer")
    return _lines(tmp, lines), "line 3", "Expecting property name enclosed in double quotes at char"


def not_an_object(tmp: Path) -> tuple[Path, str, str]:
    lines = _dumped()
    lines[1] = "[1, 2]"
    return _lines(tmp, lines), "line 2", "expected a JSON object, got list"


def missing_answer(tmp: Path) -> tuple[Path, str, str]:
    return _lines(tmp, _dumped(line2={"answer": _DROP})), "line 2, column 'answer'", "missing field"


def missing_model(tmp: Path) -> tuple[Path, str, str]:
    lines = _dumped(line5={"model": _DROP})
    return _lines(tmp, lines), "line 5, column 'model'", "missing or non-string model name"


def bad_correct(tmp: Path) -> tuple[Path, str, str]:
    lines = _dumped(line4={"correct": "yes"})
    return _lines(tmp, lines), "line 4, column 'correct'", "expected true/false, got 'yes'"


def bad_finish_reason(tmp: Path) -> tuple[Path, str, str]:
    lines = _dumped(line6={"finish_reason": "eos"})
    return _lines(tmp, lines), "line 6, column 'finish_reason'", "got 'eos'"


def bad_tokens(tmp: Path) -> tuple[Path, str, str]:
    lines = _dumped(line7={"generated_tokens": -3})
    return _lines(tmp, lines), "line 7, column 'generated_tokens'", "expected an integer >= 0"


def bad_repeat(tmp: Path) -> tuple[Path, str, str]:
    lines = _dumped(line8={"repeat": "3"})
    return (
        _lines(tmp, lines),
        "line 8, column 'repeat'",
        "expected a repeat index in [0, 65536), got '3'",
    )


def huge_repeat(tmp: Path) -> tuple[Path, str, str]:
    lines = _dumped(line2={"repeat": 10**9})
    return _lines(tmp, lines), "line 2, column 'repeat'", "got 1000000000"


def bad_logit(tmp: Path) -> tuple[Path, str, str]:
    lines = _dumped(line1={"spread": "high"})
    return _lines(tmp, lines), "line 1, column 'spread'", "expected a finite number or null"


def duplicate_repeat(tmp: Path) -> tuple[Path, str, str]:
    lines = _dumped(line3={"repeat": 0})  # p0 repeat 0 again
    return (
        _lines(tmp, lines),
        "line 3, column 'repeat'",
        "duplicate (problem_id, repeat) ('p0', 0)",
    )


def repeats_disagree(tmp: Path) -> tuple[Path, str, str]:
    lines = _dumped()
    del lines[9]  # p2 keeps 3 of its 4 rollouts; its first line is line 9
    return _lines(tmp, lines), "line 9, column 'problem_id'", "repeats disagree across docs"


def no_samples_dir(tmp: Path) -> tuple[Path, str, str]:
    folder = tmp / "runs" / "m"
    folder.mkdir(parents=True)
    (folder / f"results_{STAMP}.json").write_text("{}")
    return tmp / "runs", f"{tmp / 'runs'}: ", "no lm-eval samples here"


def stock_samples(tmp: Path) -> tuple[Path, str, str]:
    lines = samples_lines(ROLLOUTS_M)
    for line in lines:
        del line["failtrace_rollouts"]
    folder = write_run(tmp / "runs" / "m", ROLLOUTS_M, sidecar=False)
    path = write_jsonl(folder / f"samples_t_{STAMP}.jsonl", lines)
    return tmp / "runs", f"{path}, line 1, column 'failtrace_rollouts'", "t is not a failtrace task"


def samples_rollout_missing_field(tmp: Path) -> tuple[Path, str, str]:
    lines = samples_lines(ROLLOUTS_M)
    del lines[2]["failtrace_rollouts"][1]["problem_id"]
    path = write_jsonl(tmp / f"samples_t_{STAMP}.jsonl", lines)
    return path, "line 3, column 'problem_id'", "rollout 2 of 'failtrace_rollouts': missing field"


def unknown_type(tmp: Path) -> tuple[Path, str, str]:
    path = tmp / "rollouts.csv"
    path.write_text("model,task\n")
    return path, f"{path}: ", "unknown file type '.csv'"


def empty_file(tmp: Path) -> tuple[Path, str, str]:
    path = tmp / "rollouts.jsonl"
    path.write_text("")
    return path, f"{path}: ", "the file is empty"


def only_blank_lines(tmp: Path) -> tuple[Path, str, str]:
    path = _lines(tmp, ["", "  "])
    return path, f"{path}: ", "no rollouts in the input"


def missing_path(tmp: Path) -> tuple[Path, str, str]:
    return tmp / "nope", f"{tmp / 'nope'}: ", "no such file or directory"


def bad_utf8(tmp: Path) -> tuple[Path, str, str]:
    path = tmp / "rollouts.jsonl"
    data = "".join(line + "\n" for line in _dumped()).encode()
    lines = data.split(b"\n")
    lines[2] = lines[2].replace(b'"p0"', b'"p\xff"')
    path.write_bytes(b"\n".join(lines))
    return path, "line 3", "not UTF-8 text"


def parquet_bad_value(tmp: Path) -> tuple[Path, str, str]:
    records = [dict(r, correct=str(r["correct"]).lower()) for r in ROLLOUTS]
    path = write_parquet(tmp / "table.parquet", records)
    return path, "row 1, column 'correct'", "expected true/false, got 'false'"


def parquet_missing_column(tmp: Path) -> tuple[Path, str, str]:
    records = [{k: v for k, v in r.items() if k != "answer"} for r in ROLLOUTS]
    path = write_parquet(tmp / "table.parquet", records)
    return path, f"{path}, column 'answer': ", "missing column (columns present: model, task,"


def not_parquet(tmp: Path) -> tuple[Path, str, str]:
    path = tmp / "table.parquet"
    path.write_text("model,task\n")
    return path, f"{path}: ", "cannot read as Parquet"


def bad_results_json(tmp: Path) -> tuple[Path, str, str]:
    folder = write_run(tmp / "runs" / "m", ROLLOUTS_M)
    results = folder / f"results_{STAMP}.json"
    results.write_text("{")
    return tmp / "runs", f"{results}: ", "invalid JSON"


CASES: list[Callable[[Path], tuple[Path, str, str]]] = [
    truncated,
    invalid_json,
    not_an_object,
    missing_answer,
    missing_model,
    bad_correct,
    bad_finish_reason,
    bad_tokens,
    bad_repeat,
    huge_repeat,
    bad_logit,
    duplicate_repeat,
    repeats_disagree,
    no_samples_dir,
    stock_samples,
    samples_rollout_missing_field,
    unknown_type,
    empty_file,
    only_blank_lines,
    missing_path,
    bad_utf8,
    parquet_bad_value,
    parquet_missing_column,
    not_parquet,
    bad_results_json,
]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_malformed_input_exits_2_naming_the_place(
    tmp_path: Path, case: Callable[[Path], tuple[Path, str, str]], suffix: str
) -> None:
    path, where, what = case(tmp_path)
    output = tmp_path / "out" / f"profile{suffix}"
    result = CliRunner().invoke(main, ["profile", str(path), "-o", str(output)])
    assert result.exit_code == 2, result.output
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("Error: ")
    if not where.endswith(": "):  # a located error names the file first, then line/row/column
        where = f"{path if path.is_file() else ''}, {where}".lstrip(", ")
    assert where in message, message
    assert what in message, message
    assert not output.exists()
    assert not output.parent.exists() or not any(output.parent.iterdir())
