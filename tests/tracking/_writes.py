"""Test hook: count the MLflow store writes a process makes, and die at write number k.

Used only by the tests of all-or-nothing logging; nothing in the package imports it. It wraps
the write methods (``create_*``, ``log_*``, ``set_*``, ``delete_*``, ...) of MLflow's SQL and
REST stores and of the local and HTTP artifact repositories, which every fluent or client call
goes through. At write ``k`` it either sends the process SIGKILL (a real kill, for subprocesses)
or raises :class:`Killed` and refuses every later write (in-process: the store then holds exactly
what a kill before write ``k`` leaves, because a dead process writes nothing more).

In a subprocess: ``python -c "import _writes; _writes.main()" log ...`` runs ``failtrace`` with
``FAILTRACE_TEST_KILL_AT_WRITE=k`` set: it is killed before its k-th write.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import re
import signal
from collections.abc import Iterator

_WRITE = re.compile(
    r"^(create|log|set|delete|update|rename|finalize|record|restore|transition|register)_"
)

_CLASSES = (
    ("mlflow.store.tracking.sqlalchemy_store", "SqlAlchemyStore"),
    ("mlflow.store.model_registry.sqlalchemy_store", "SqlAlchemyStore"),
    ("mlflow.store.tracking.rest_store", "RestStore"),
    ("mlflow.store.model_registry.rest_store", "RestStore"),
    ("mlflow.store.artifact.local_artifact_repo", "LocalArtifactRepository"),
    ("mlflow.store.artifact.http_artifact_repo", "HttpArtifactRepository"),
)


class Killed(BaseException):
    """The in-process kill: a BaseException, so that no ``except Exception`` of the code under
    test handles it (a killed process runs no handler at all)."""


class WriteCounter:
    """Counts writes; at ``kill_at`` kills the process (``real``) or raises :class:`Killed`."""

    def __init__(self, kill_at: int | None = None, *, real: bool = False) -> None:
        self.kill_at, self.real = kill_at, real
        self.count = 0
        self.names: list[str] = []
        self.dead = False

    def before_write(self, name: str) -> None:
        if self.dead:
            raise Killed(f"write after the kill: {name}")
        self.count += 1
        self.names.append(name)
        if self.kill_at is not None and self.count >= self.kill_at:
            if self.real:
                os.kill(os.getpid(), signal.SIGKILL)
            self.dead = True
            raise Killed(f"killed before write {self.count}: {name}")


@contextlib.contextmanager
def counting(counter: WriteCounter) -> Iterator[WriteCounter]:
    """Route every store write through ``counter`` for the block."""
    patched = []
    for module_name, class_name in _CLASSES:
        cls = getattr(importlib.import_module(module_name), class_name)
        for name, method in list(vars(cls).items()):
            if _WRITE.match(name) and callable(method):
                patched.append((cls, name, method))
                setattr(cls, name, _wrap(counter, f"{class_name}.{name}", method))
    try:
        yield counter
    finally:
        for cls, name, method in patched:
            setattr(cls, name, method)


def _wrap(counter: WriteCounter, label: str, method):
    @functools.wraps(method)
    def write(*args, **kwargs):
        counter.before_write(label)
        return method(*args, **kwargs)

    return write


def main() -> None:
    """``failtrace`` with the hook installed from the environment (see the module docstring)."""
    counter = WriteCounter(int(os.environ["FAILTRACE_TEST_KILL_AT_WRITE"]), real=True)
    from lm_failtrace.cli import main as failtrace

    with counting(counter):
        failtrace(prog_name="failtrace")
