"""The repository stands alone: a user clones it with nothing beside it.

Nothing tracked may point outside the repository (the paper's data ships in
``lm_failtrace.datasets``, the method in ``docs/method.md``), and a bare clone, in a folder with no
siblings, passes the tests that need the paper's data.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Built from pieces so that this file does not contain what it searches for.
_SIBLING = "sha" + "red"
NEEDLES: tuple[str, ...] = ("../" + _SIBLING, _SIBLING + "/data", _SIBLING + "/docs")

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or not (REPO / ".git").exists(),
    reason="needs git and a git checkout of the repository",
)


def _git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=120
    ).stdout


def test_no_tracked_file_refers_outside_the_repository() -> None:
    hits = []
    for name in _git("ls-files", "-z").split("\0"):
        path = REPO / name
        if not name or not path.is_file():  # deleted in the working tree, or a submodule
            continue
        content = path.read_bytes()
        hits += [f"{name}: {needle!r}" for needle in NEEDLES if needle.encode() in content]
    assert not hits, "tracked files refer to a folder beside the repository:\n" + "\n".join(hits)


@pytest.mark.slow
def test_a_bare_clone_reproduces_the_paper(tmp_path: Path) -> None:
    """A fresh clone runs the reference tests with its own ``lm_failtrace`` and nothing beside it.

    The clone holds the committed HEAD: uncommitted changes of the working tree are not in it.
    """
    clone = tmp_path / "clone"
    _git("clone", "--quiet", str(REPO), str(clone))
    assert [p.name for p in tmp_path.iterdir()] == ["clone"]  # no sibling folders
    # The clone's package first; the outer pytest's state (PYTEST_* variables) is not inherited.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(clone), env.get("PYTHONPATH")]))

    where = subprocess.run(
        [sys.executable, "-c", "import lm_failtrace; print(lm_failtrace.__file__)"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).resolve().is_relative_to(clone.resolve()), where.stdout

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/analysis/test_reference.py",
        ],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert " passed" in proc.stdout and " skipped" not in proc.stdout, proc.stdout[-4000:]
