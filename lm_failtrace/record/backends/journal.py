"""What a server recording has received so far, on disk, so that a rerun resumes.

A recording against servers can lose a replica, or all of them, hours in. Every rollout the
backend has received (text and metadata) is appended to a JSONL journal as soon as it is
complete, keyed by everything that determines it (server model, task, doc, repeat, seed, prompt,
sampling settings, ancestor and K). A rerun of the same command reads the journal back and
requests only what is missing; since the seeds are the same, the finished run equals one that
never failed, with nothing lost and nothing duplicated. The journal is removed once every
rollout of the run has been received: it only ever exists for an interrupted run.

Lines are appended whole and flushed; a last line without its newline is an append a kill cut
short and is ignored (its rollout is requested again).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lm_failtrace.errors import InputError


def rollout_key(parts: Iterable[Any]) -> str:
    """A stable key of one rollout request from the values that determine its result."""
    blob = json.dumps(list(parts), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class Journal:
    """Append-only received rollouts (see the module docstring); ``path=None`` keeps nothing.

    Args:
        path: the JSONL file (created on the first append).
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = None if path in (None, "", "none") else Path(str(path)).expanduser()
        self._lock = threading.Lock()

    def load(self) -> dict[str, dict[str, Any]]:
        """Every complete record by key (``{"text": ..., "meta": {...}}``).

        Raises:
            InputError: a complete line that is not a journal record (the file was damaged or
                is not a journal), naming the file and line.
        """
        if self.path is None or not self.path.is_file():
            return {}
        records: dict[str, dict[str, Any]] = {}
        with self.path.open("rb") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.endswith(b"\n"):
                    break  # an append cut short by a kill
                try:
                    record = json.loads(line)
                    records[str(record["key"])] = {
                        "text": str(record["text"]),
                        "meta": dict(record["meta"]),
                    }
                except (ValueError, KeyError, TypeError):
                    raise InputError(
                        "not a failtrace recording journal line; delete the journal to sample "
                        "afresh",
                        path=self.path,
                        line=number,
                    ) from None
        return records

    def append(self, key: str, text: str, meta: dict[str, Any]) -> None:
        """Add one received rollout (one whole line, flushed to the OS)."""
        if self.path is None:
            return
        line = json.dumps({"key": key, "text": text, "meta": meta}, default=str) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())

    def remove(self) -> None:
        """Forget the journal once the run has everything."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
