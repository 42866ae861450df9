"""Registry-side claims: one ``failtrace log`` at a time per model version (and per checkpoint).

MLflow has no lock, but every store has one compare-and-set: registered model names are unique,
so of several processes creating the same registered model exactly one succeeds and the others
get ``RESOURCE_ALREADY_EXISTS`` (sqlite, PostgreSQL, MySQL, and a tracking server in front of
any of them). A claim on a key is the registered model ``failtrace-lock-<sha256(key)[:20]>``,
created with tags naming its holder (attempt id, host, pid, lease) and deleted on release. It is
the first thing a log attempt writes, so the attempt id is recorded before anything else.

A waiter polls. A holder is dead when it ran on this host and its process is gone (pid and
process start time, so a reused pid does not count), or, from another host, when its lease has
expired (:data:`LEASE_S`; a live holder renews it every :data:`HEARTBEAT_S` from a thread). A dead
holder's claim is broken under a second claim named after that holder, so that two waiters never
both delete it; whoever breaks it then competes for the claim like everyone else. (Two breakers can
still collide if a breaker itself dies inside the few milliseconds it holds its claim, and another
waiter breaks that one too: this is the one window left.)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lm_failtrace.tracking.registry import TAG_ATTEMPT

#: Registered models whose name starts with this are claims, not models.
LOCK_PREFIX = "failtrace-lock-"
TAG_KEY = "failtrace.lock_key"
TAG_MODEL = "failtrace.lock_model"
TAG_HOST = "failtrace.host"
TAG_PID = "failtrace.pid"
TAG_PID_START = "failtrace.pid_start"
TAG_SINCE = "failtrace.since"
TAG_LEASE = "failtrace.lease_until"

#: Seconds a holder on another host counts as alive without renewing its lease.
LEASE_S = 120.0
#: Seconds between two renewals of a held lease.
HEARTBEAT_S = 30.0
#: Seconds between two looks at a claim someone else holds.
POLL_S = 0.5


def lock_name(key: str) -> str:
    """The registered model that is the claim on ``key``."""
    return LOCK_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:20]


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


#: This machine, as claims name it: host name plus boot id (a pid means nothing across boots).
HOST = f"{socket.gethostname()}/{_boot_id()}"


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), "" where unknown; None: no process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        stat = ""
    if stat:
        return stat.rpartition(")")[2].split()[19]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return ""


@dataclass(frozen=True)
class Holder:
    """Who holds a claim, from the claim's tags."""

    attempt: str
    host: str
    pid: int
    pid_start: str
    since: str
    lease_until: float

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> Holder:
        try:
            pid, lease = int(tags.get(TAG_PID, "0")), float(tags.get(TAG_LEASE, "0"))
        except ValueError:
            pid, lease = 0, 0.0
        return cls(
            tags.get(TAG_ATTEMPT, ""),
            tags.get(TAG_HOST, ""),
            pid,
            tags.get(TAG_PID_START, ""),
            tags.get(TAG_SINCE, ""),
            lease,
        )

    @classmethod
    def me(cls, attempt: str) -> Holder:
        pid = os.getpid()
        since = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return cls(attempt, HOST, pid, process_start(pid) or "", since, time.time() + LEASE_S)

    def tags(self) -> dict[str, str]:
        return {
            TAG_ATTEMPT: self.attempt,
            TAG_HOST: self.host,
            TAG_PID: str(self.pid),
            TAG_PID_START: self.pid_start,
            TAG_SINCE: self.since,
            TAG_LEASE: f"{self.lease_until:.0f}",
        }

    def alive(self) -> bool:
        if self.host == HOST:
            return process_start(self.pid) == self.pid_start
        return self.lease_until > time.time()

    def describe(self) -> str:
        host = self.host.partition("/")[0] or "an unknown host"
        return f"attempt {self.attempt or '?'} (pid {self.pid} on {host}, since {self.since})"


def _read(client: Any, name: str) -> dict[str, str] | None:
    """The tags of claim ``name``, or None when nobody holds it."""
    from mlflow.exceptions import MlflowException

    try:
        return dict(client.get_registered_model(name).tags)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def _create(client: Any, name: str, tags: dict[str, str], description: str) -> bool:
    """Create claim ``name``; False when it exists already (someone else was first).

    MLflow's SQL store answers a create that collides by reading the existing model back; when its
    holder released it in between, that read fails with ``RESOURCE_DOES_NOT_EXIST``. Either way
    someone else held the claim a moment ago, and the caller looks again.
    """
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name, tags=tags, description=description)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST"):
            return False
        raise
    return True


def _delete(client: Any, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.delete_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise


class Claim:
    """A claim on ``key`` for attempt ``attempt`` (see the module docstring)."""

    def __init__(self, client: Any, key: str, model: str, attempt: str) -> None:
        self.client, self.key, self.model = client, key, model
        self.name = lock_name(key)
        self.holder = Holder.me(attempt)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _tags(self) -> dict[str, str]:
        return {**self.holder.tags(), TAG_KEY: self.key, TAG_MODEL: self.model}

    def try_acquire(self) -> Holder | None:
        """Take the claim if it is free or its holder is dead; else return the live holder."""
        description = (
            f"Claim of `failtrace log` on {self.key}, held by {self.holder.describe()}; deleted "
            "when that log ends. Not a model."
        )
        while True:
            self.holder = Holder.me(self.holder.attempt)  # a fresh lease after any wait
            if _create(self.client, self.name, self._tags(), description):
                self._start_heartbeat()
                return None
            tags = _read(self.client, self.name)
            if tags is None:
                continue  # released in between: try again
            other = Holder.from_tags(tags)
            if other.attempt == self.holder.attempt:  # our own create, retried after it worked
                self._start_heartbeat()
                return None
            if other.alive():
                return other
            _break(self.client, self.name, other)

    def acquire(self, say: Callable[[str], None]) -> None:
        """Wait until the claim is ours, saying once whom we wait for."""
        told = False
        while (other := self.try_acquire()) is not None:
            if not told:
                say(f"waiting for another failtrace log on {self.key}: {other.describe()}")
                told = True
            time.sleep(POLL_S)

    def held(self) -> bool:
        """Whether the claim is still ours (read back from the registry)."""
        tags = _read(self.client, self.name)
        return tags is not None and tags.get(TAG_ATTEMPT) == self.holder.attempt

    def release(self) -> None:
        """Stop renewing and delete the claim if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.held():
            _delete(self.client, self.name)

    def _start_heartbeat(self) -> None:
        def renew() -> None:
            while not self._stop.wait(HEARTBEAT_S):
                lease = f"{time.time() + LEASE_S:.0f}"
                with contextlib.suppress(Exception):  # the next renewal tries again
                    self.client.set_registered_model_tag(self.name, TAG_LEASE, lease)

        self._thread = threading.Thread(target=renew, name="failtrace-claim", daemon=True)
        self._thread.start()


def _break(client: Any, name: str, dead: Holder) -> None:
    """Delete claim ``name`` of the dead holder ``dead``, under a claim on breaking it."""
    marker = lock_name(f"break {name} of {dead.attempt}")
    me = Holder.me(f"breaker-{uuid.uuid4().hex[:16]}")
    if _create(client, marker, me.tags(), "Breaking a dead failtrace claim. Not a model."):
        try:
            tags = _read(client, name)
            if tags is not None and tags.get(TAG_ATTEMPT) == dead.attempt:
                _delete(client, name)
        finally:
            _delete(client, marker)
        return
    tags = _read(client, marker)
    if tags is not None and not Holder.from_tags(tags).alive():
        _delete(client, marker)  # a breaker that died while breaking
    time.sleep(POLL_S)


@contextlib.contextmanager
def claimed(
    client: Any, key: str, model: str, attempt: str, say: Callable[[str], None]
) -> Iterator[Claim]:
    """Hold the claim on ``key`` for the block (waiting for it first)."""
    claim = Claim(client, key, model, attempt)
    claim.acquire(say)
    try:
        yield claim
    finally:
        try:
            claim.release()
        except Exception as exc:  # the work is done or undone; a dead claim is broken later
            say(f"could not release the claim on {key} ({exc}); the next log will break it")


def claims_of(client: Any, model: str) -> list[tuple[str, Holder]]:
    """Every claim (key, holder) on ``model``'s keys that exists now, live or dead."""
    found = client.search_registered_models(
        filter_string=f"name LIKE '{LOCK_PREFIX}%'", max_results=1000
    )
    return [
        (m.tags.get(TAG_KEY, m.name), Holder.from_tags(dict(m.tags)))
        for m in found
        if m.tags.get(TAG_MODEL) == model
    ]
