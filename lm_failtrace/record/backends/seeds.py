"""Repeat indices and per-repeat sampling seeds.

lm-eval sends a doc's request ``repeats`` times in a row as the *same* ``Instance`` object, with no
repeat index, and stock backends sample every repeat with one seed (an API server that honours
seeds then returns N identical completions). Our backends number the repeats themselves and give
each its own seed.

Seed derivation (stable across runs, machines and Python versions; independent of batching)::

    seed = int.from_bytes(sha256(f"{base_seed}|{task}|{doc_id}|{repeat}")[:4], "big") & 0x7FFFFFFF

31 bits, so every server accepts it (llama.cpp takes uint32, OpenAI-style APIs int).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: Base seed when neither ``seed=`` (model argument) nor ``--seed`` is given.
DEFAULT_BASE_SEED = 1234


def rollout_seed(base_seed: int, task: str, doc_id: int, repeat: int) -> int:
    """The sampling seed of one repeat of one doc (see the module docstring for the formula)."""
    key = f"{base_seed}|{task}|{doc_id}|{repeat}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class RepeatSlot:
    """Where one request of lm-eval's list sits among its doc's repeats, and the seed it gets."""

    task: str
    doc_id: int
    repeat: int
    seed: int


def assign_repeats(requests: Sequence[Any], base_seed: int) -> list[RepeatSlot]:
    """Number each request's repeat per ``(task_name, doc_id)`` in order of appearance.

    Must run on lm-eval's list as received, before any sorting or batching: order of appearance
    is the only repeat index lm-eval gives, and it is the order in which responses are handed to
    ``process_results``.

    Args:
        requests: lm-eval ``Instance`` objects (``task_name`` and ``doc_id`` are read).
        base_seed: the run's base seed.
    """
    seen: dict[tuple[str, int], int] = {}
    slots = []
    for request in requests:
        task, doc_id = str(request.task_name), int(request.doc_id)
        repeat = seen.get((task, doc_id), 0)
        seen[(task, doc_id)] = repeat + 1
        slots.append(
            RepeatSlot(task, doc_id, repeat, rollout_seed(base_seed, task, doc_id, repeat))
        )
    return slots
