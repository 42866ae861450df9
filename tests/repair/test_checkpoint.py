"""The repair checkpoint: an interrupted append is redone, a damaged line is an error naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lm_failtrace.errors import InputError
from lm_failtrace.repair.runner import Checkpoint

HEADER = {"config": {"trials": 2}, "runs": ["samples.jsonl"]}
OPERATORS = ("retry", "budget")
RESULT = {"retry": 0.5, "retry_tokens": 10.0, "budget": 1.0, "budget_tokens": float("nan")}


def _open(path: Path) -> Checkpoint:
    return Checkpoint(path, HEADER, OPERATORS)


def test_nothing_is_written_before_the_first_result(tmp_path: Path) -> None:
    path = tmp_path / "out" / "p.csv.partial.jsonl"
    checkpoint = _open(path)
    assert not path.exists() and checkpoint.done == {}
    checkpoint.add("t", "p1", RESULT)
    checkpoint.add("t", "p2", RESULT)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == HEADER and len(lines) == 3
    again = _open(path)
    assert set(again.done) == {("t", "p1"), ("t", "p2")}
    assert again.done[("t", "p1")]["retry"] == 0.5


def test_an_interrupted_append_is_dropped_and_redone(tmp_path: Path) -> None:
    path = tmp_path / "p.csv.partial.jsonl"
    _open(path).add("t", "p1", RESULT)
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"task": "t", "problem_id": "p2", "res')  # a kill mid-write
    checkpoint = _open(path)
    assert set(checkpoint.done) == {("t", "p1")}
    assert path.read_bytes() == whole  # the fragment is gone before anything is appended
    checkpoint.add("t", "p2", RESULT)
    assert set(_open(path).done) == {("t", "p1"), ("t", "p2")}


def test_an_interrupted_first_write_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "p.csv.partial.jsonl"
    path.write_bytes(b'{"config": {"tri')
    checkpoint = _open(path)
    assert checkpoint.done == {} and path.read_bytes() == b""
    checkpoint.add("t", "p1", RESULT)
    assert set(_open(path).done) == {("t", "p1")}


@pytest.mark.parametrize(
    ("line", "what"),
    [
        (b"garbage\n", "not a JSON line"),
        (b'{"task": "t", "problem_id": "p2", "result": {"retry": 0.5\n', "not a JSON line"),
        (b'{"task": "\xff"}\n', "not a JSON line"),
        (b"[1]\n", "expected an object with task, problem_id and result"),
        (b'{"task": "t", "problem_id": 7, "result": {}}\n', "expected an object"),
        (b'{"task": "t", "problem_id": "p2", "result": {"retry": 0.5}}\n', "retry_tokens is None"),
        (json.dumps({"task": "t", "problem_id": "p2", "result": {**RESULT, "budget": 2}}).encode()
         + b"\n", "budget is 2"),
        (json.dumps({"task": "t", "problem_id": "p2", "result": {**RESULT, "retry": True}}).encode()
         + b"\n", "retry is True"),
    ],
)  # fmt: skip
def test_a_damaged_line_is_an_error_naming_it(tmp_path: Path, line: bytes, what: str) -> None:
    path = tmp_path / "p.csv.partial.jsonl"
    _open(path).add("t", "p1", RESULT)
    path.write_bytes(path.read_bytes() + line)
    before = path.read_bytes()
    with pytest.raises(InputError) as caught:
        _open(path)
    assert (caught.value.path, caught.value.line) == (str(path), 3)
    assert what in caught.value.message
    assert caught.value.message.endswith("pass `restart` to discard the checkpoint and start over")
    assert path.read_bytes() == before


def test_a_checkpoint_of_other_settings_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.csv.partial.jsonl"
    Checkpoint(path, {**HEADER, "config": {"trials": 3}}, OPERATORS).add("t", "p1", RESULT)
    with pytest.raises(InputError, match=r"other settings or input.*`restart`"):
        _open(path)
