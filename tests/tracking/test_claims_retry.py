"""The parts of the claim and retry logic that need no store: liveness and what is retried."""

from __future__ import annotations

import dataclasses
import subprocess
import time

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    RESOURCE_DOES_NOT_EXIST,
    TEMPORARILY_UNAVAILABLE,
)

from lm_failtrace.tracking import claims, retry


def test_a_holder_is_dead_when_its_process_is_gone_or_its_lease_ran_out() -> None:
    me = claims.Holder.me("a1")
    assert me.alive()
    exited = subprocess.Popen(["true"])
    exited.wait()
    assert not dataclasses.replace(me, pid=exited.pid).alive()
    assert not dataclasses.replace(me, pid_start="1").alive()  # the pid now names another process
    elsewhere = dataclasses.replace(me, host="other/boot", pid=1)
    assert elsewhere.alive()
    assert not dataclasses.replace(elsewhere, lease_until=time.time() - 1).alive()
    assert claims.Holder.from_tags(me.tags()) == dataclasses.replace(
        me, lease_until=float(f"{me.lease_until:.0f}")
    )


def test_claim_names_differ_per_key_and_are_registry_names() -> None:
    a, b = claims.lock_name("m version 1"), claims.lock_name("m version 2")
    assert a != b and a.startswith(claims.LOCK_PREFIX) and "/" not in a and ":" not in a


class _Flaky:
    def __init__(self, errors: list[Exception]) -> None:
        self.errors, self.calls = errors, 0

    def get_run(self, run_id: str) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return run_id


def test_transient_errors_are_retried_and_others_are_not(monkeypatch) -> None:
    monkeypatch.setattr(retry, "BACKOFF_S", 0.0)
    busy = MlflowException("(sqlite3.OperationalError) database is locked", INTERNAL_ERROR)
    later = MlflowException("try later", TEMPORARILY_UNAVAILABLE)
    assert (busy.error_code, later.error_code) == ("INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE")
    flaky = _Flaky([busy, later])
    assert retry.RetryingClient(flaky).get_run("r") == "r" and flaky.calls == 3
    wrong = _Flaky([MlflowException("bad name", INVALID_PARAMETER_VALUE)])
    with pytest.raises(MlflowException, match="bad name"):
        retry.RetryingClient(wrong).get_run("r")
    assert wrong.calls == 1
    always = _Flaky([later] * retry.ATTEMPTS)
    with pytest.raises(MlflowException, match="try later"):
        retry.RetryingClient(always).get_run("r")
    assert always.calls == retry.ATTEMPTS


class _ReleasedMeanwhile:
    """A registry whose first create collides with a claim released while MLflow read it back.

    MLflow's SQL store answers a colliding create by reading the existing model; when its holder
    deleted it in between, that read fails with RESOURCE_DOES_NOT_EXIST (seen with eight
    concurrent loggers against a server on PostgreSQL).
    """

    def __init__(self) -> None:
        self.models: dict[str, dict[str, str]] = {}
        self.creates = 0

    def create_registered_model(self, name, tags=None, description=None):
        self.creates += 1
        if self.creates == 1:
            raise MlflowException("not found", error_code=RESOURCE_DOES_NOT_EXIST)
        self.models[name] = dict(tags or {})

    def get_registered_model(self, name):
        if name not in self.models:
            raise MlflowException("not found", error_code=RESOURCE_DOES_NOT_EXIST)
        return type("RM", (), {"tags": self.models[name]})()


def test_a_claim_released_during_a_colliding_create_is_taken_on_the_next_try() -> None:
    store = _ReleasedMeanwhile()
    claim = claims.Claim(store, "m version 1", "m", "attempt-1")
    try:
        assert claim.try_acquire() is None  # ours, not an error
        assert store.creates == 2 and claim.held()
    finally:
        claim._stop.set()
