"""The two output helpers every command shares: outputs never touch inputs, and appear whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from lm_failtrace.errors import InputError
from lm_failtrace.outputs import TMP_SUFFIX, atomic_output, check_outputs, write_atomic
from lm_failtrace.profiles import write_profiles


def test_an_output_that_is_or_enters_an_input_is_refused(tmp_path: Path) -> None:
    table, run = tmp_path / "in.csv", tmp_path / "runs"
    table.write_text("x\n")
    (run / "m").mkdir(parents=True)
    (tmp_path / "link.csv").symlink_to(table)
    os.link(table, tmp_path / "hard.csv")
    refused = {
        "in.csv": "is the input",
        "./runs/../in.csv": "is the input",
        "link.csv": "is the input",
        "hard.csv": "is the input",
        "runs/m/results.json": "lies inside the input folder",
        "runs": "is a folder",
        "in.csv/out.csv": "in.csv is a file, not a folder",
    }
    for output, reason in refused.items():
        with pytest.raises(InputError) as caught:
            check_outputs([("output", tmp_path / output)], [table, run])
        assert caught.value.parameter == "output" and reason in caught.value.message, output
    check_outputs([("output", tmp_path / "out.csv")], [table, run])
    check_outputs([], [table], folders=[("plot", tmp_path / "figs")])


def test_a_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path: Path) -> None:
    existing = write_atomic(tmp_path / "page.html", "old")
    with pytest.raises(RuntimeError), atomic_output(existing) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert existing.read_text() == "old" and sorted(tmp_path.iterdir()) == [existing]
    deep = tmp_path / "a" / "b" / "page.html"
    with pytest.raises(RuntimeError), atomic_output(deep):
        raise RuntimeError("killed")
    assert not (tmp_path / "a").exists()  # the folders made for it are gone too
    assert write_atomic(deep, b"\x89PNG").read_bytes() == b"\x89PNG"
    assert oct(deep.stat().st_mode & 0o777) == "0o644"


_WRITER = """
import sys, time
from lm_failtrace.outputs import atomic_output
with atomic_output(sys.argv[1]) as tmp:
    print(tmp, flush=True)
    time.sleep(60)
"""


def _writer(target: Path) -> tuple[subprocess.Popen, Path]:
    """A process in the middle of writing ``target`` (its temporary file exists)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_WRITER), str(target)],
        stdout=subprocess.PIPE,
        text=True,
    )
    tmp = Path(proc.stdout.readline().strip())
    assert tmp.exists() and tmp.name.endswith(TMP_SUFFIX) and tmp.parent == target.parent
    return proc, tmp


def test_a_killed_writer_s_temporary_file_is_removed_by_the_next_write(tmp_path: Path) -> None:
    target = tmp_path / "profiles.csv"
    killed, stale = _writer(target)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert stale.exists() and stale.stat().st_size == 0  # what SIGKILL leaves behind
    live, running = _writer(target)  # the next writer of the same output...
    try:
        assert not stale.exists()  # ...removes it: its process is gone
        frame = pd.DataFrame({"cell": ["m|t"], "model": ["m"], "task": ["t"], "problem_id": ["1"]})
        write_profiles(frame, target)
        assert running.exists()  # a writer still at work keeps its file
    finally:
        live.send_signal(signal.SIGKILL)
        live.wait()
    write_atomic(target, "again")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["profiles.csv"]
