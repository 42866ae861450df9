"""``failtrace log`` is all or nothing under kill -9 and idempotent under concurrency.

Against a new sqlite database and against a real ``mlflow server`` on PostgreSQL with proxied
artifacts. The kill trials stop a log before its k-th MLflow store write: in-process (the
``_writes`` hook raises and refuses every later write, so the store holds what a killed process
leaves) at every write of a first log and of a re-log on sqlite and at seeded writes on
PostgreSQL, and with a real SIGKILL in subprocesses at seeded writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import _writes
import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from lm_failtrace.analysis import AnalysisConfig
from lm_failtrace.tracking import claims, log_failure_landscape, registry, status
from lm_failtrace.tracking import logging as tracking_logging

pytestmark = pytest.mark.slow

FIRST = AnalysisConfig(n_repeats=2)
RELOG = AnalysisConfig(n_repeats=2, random_state=1)  # another input hash: moves the link
HERE = Path(__file__).parent
FAILTRACE = str(Path(sys.executable).parent / "failtrace")

#: Seeded kill points per phase against PostgreSQL (every write on sqlite).
POSTGRES_POINTS = 10


def unique(name: str) -> str:
    """``name`` made unique: the PostgreSQL server is shared by the whole session."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def source(cell_csv, tmp_path: Path) -> Path:
    return cell_csv(tmp_path / "sft4b.csv", "sft4b|gsm8k")


@pytest.fixture
def cached_landscape(monkeypatch):
    """The analysis computed once per (table, settings): the trials repeat the MLflow writes,
    not the statistics."""
    real = tracking_logging.compute_landscape
    cache = {}

    def compute(table, config, **kwargs):
        key = (
            pd.util.hash_pandas_object(table.frame).sum(),
            json.dumps(dataclasses.asdict(config), default=str),
        )
        if key not in cache:
            cache[key] = real(table, config, **kwargs)
        return cache[key]

    monkeypatch.setattr(tracking_logging, "compute_landscape", compute)


def _log(source: Path, model: str, uri: str, config: AnalysisConfig):
    return log_failure_landscape(
        source, model, checkpoint=f"file:///ckpt/{model}", tracking_uri=uri, config=config,
        progress=None,
    )  # fmt: skip


@contextlib.contextmanager
def _as_dead_process():
    """Claims taken in the block name a process that has exited: after an in-process kill, the
    holder must look as dead as a killed process does (same host, no such pid)."""
    exited = subprocess.Popen(["true"])
    exited.wait()
    real = claims.Holder.me

    def me(cls, attempt: str) -> claims.Holder:
        return dataclasses.replace(real(attempt), pid=exited.pid, pid_start="")

    claims.Holder.me = classmethod(me)
    try:
        yield
    finally:
        claims.Holder.me = real


def _forget_active_runs() -> None:
    """Drop the runs a killed in-process log left on MLflow's run stack, writing nothing."""
    real = MlflowClient.set_terminated
    MlflowClient.set_terminated = lambda *args, **kwargs: None
    try:
        while mlflow.active_run() is not None:
            mlflow.end_run()
    finally:
        MlflowClient.set_terminated = real


def _parent_runs(client: MlflowClient, model: str) -> list:
    experiment = client.get_experiment_by_name(registry.experiment_name(model))
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    return [r for r in runs if "mlflow.parentRunId" not in r.data.tags]


def _all_runs(client: MlflowClient, model: str) -> list:
    experiment = client.get_experiment_by_name(registry.experiment_name(model))
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], max_results=1000)


def check_links(client: MlflowClient, model: str) -> None:
    """No model version links a router version that does not exist; every router version that
    names a source model version is linked by it (or superseded by a newer one it links)."""
    routers = {str(rv.version): rv for rv in registry.all_versions(client, f"{model}-router")}
    versions = {str(mv.version): mv for mv in registry.all_versions(client, model)}
    for mv in versions.values():
        linked = registry.linked_router_version(model, mv.tags)
        assert linked is None or linked in routers, (mv.version, linked, sorted(routers))
    for rv in routers.values():
        source = rv.tags.get(registry.TAG_SOURCE_VERSION)
        if source is None:
            continue
        assert rv.tags[registry.TAG_SOURCE_NAME] == model
        linked = registry.linked_router_version(model, versions[source].tags)
        assert linked is not None and int(linked) >= int(rv.version), (rv.version, linked)


def _check_complete(client: MlflowClient, model: str, config_runs: int, routers: int) -> None:
    """After the rerun: one version, its link complete and described, no duplicates, nothing
    RUNNING, no claim left."""
    (mv,) = registry.all_versions(client, model)
    digest = mv.tags[registry.TAG_HASH]
    logged = registry.find_logged(client, model, mv, digest)
    assert logged is not None and logged.described
    assert len(registry.all_versions(client, f"{model}-router")) == routers
    finished = [r for r in _parent_runs(client, model) if r.info.status == "FINISHED"]
    assert len(finished) == config_runs, [r.info.run_id for r in finished]
    assert mv.tags[registry.TAG_RUN] in {r.info.run_id for r in finished}
    assert not [r for r in _all_runs(client, model) if r.info.status == "RUNNING"]
    assert claims.claims_of(client, model) == []
    check_links(client, model)


def _count_writes(source: Path, uri: str) -> tuple[int, int]:
    """Writes of a first log and of a re-log (the kill points)."""
    model = unique("count")
    with _writes.counting(_writes.WriteCounter()) as first:
        _log(source, model, uri, FIRST)
    with _writes.counting(_writes.WriteCounter()) as again:
        _log(source, model, uri, RELOG)
    return first.count, again.count


def _kill_points(uri: str, writes: int, seed: int) -> list[int]:
    """Every write on sqlite (and one past the last); seeded ones on the shared server."""
    points = list(range(1, writes + 1))
    if uri.startswith("sqlite"):
        return points
    return sorted(random.Random(seed).sample(points, POSTGRES_POINTS))


def _relog_stores(source: Path, uri: str):
    """``start(k) -> (uri, model)``: a store holding one complete first log, for trial ``k``.

    On sqlite a copy of one template database (the trial costs no first log); on the shared
    server a first log of a model of the trial's own.
    """
    if not uri.startswith("sqlite:///"):

        def log_first(k: int) -> tuple[str, str]:
            model = unique(f"kill.relog{k}")
            _log(source, model, uri, FIRST)
            return uri, model

        return log_first
    template = Path(uri.removeprefix("sqlite:///"))
    _log(source, "kill.relog", uri, FIRST)

    def copy(k: int) -> tuple[str, str]:
        trial = template.with_name(f"trial{k}.db")
        shutil.copyfile(template, trial)
        return f"sqlite:///{trial}", "kill.relog"

    return copy


def _trial(source: Path, uri: str, model: str, config: AnalysisConfig, k: int, runs: int) -> None:
    """Kill a log of ``model`` before write ``k``; check, run status, rerun, check again.

    ``runs``: the FINISHED parent runs (and router versions) a complete store then holds.
    """
    client = MlflowClient(uri, registry_uri=uri)
    with (
        _as_dead_process(),
        _writes.counting(_writes.WriteCounter(kill_at=k)),
        pytest.raises(_writes.Killed),
    ):
        _log(source, model, uri, config)
    _forget_active_runs()
    check_links(client, model)
    left = claims.claims_of(client, model)
    if left or registry.get_model(client, model) is not None:
        report = status(model, tracking_uri=uri)
        if left:  # the attempt had written its claim: status names it
            assert any("was interrupted" in line for line in report.repaired), report
        assert not [r for r in _all_runs(client, model) if r.info.status == "RUNNING"]
        assert claims.claims_of(client, model) == []
        check_links(client, model)
    result = _log(source, model, uri, config)
    assert result.model_version == "1"
    _check_complete(client, model, config_runs=runs, routers=runs)


@pytest.mark.parametrize("phase", ["first", "relog"])
def test_kill_before_every_write_then_status_and_rerun_finish(
    store, source, cached_landscape, phase
) -> None:
    first, relog = _count_writes(source, store)
    assert min(first, relog) >= 30  # the hook sees the writes (runs, artifacts, registry)
    if phase == "first":
        for k in _kill_points(store, first, seed=13):
            # A dot in the name: a common model name that MLflow accepts.
            _trial(source, store, unique(f"kill.first{k}"), FIRST, k, runs=1)
        return
    start = _relog_stores(source, store)
    for k in _kill_points(store, relog, seed=31):
        uri, model = start(k)
        _trial(source, uri, model, RELOG, k, runs=2)


def _hooked(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``failtrace ARGS`` in a subprocess with the write hook of :mod:`_writes`."""
    full = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", **env}
    full["PYTHONPATH"] = os.pathsep.join([str(HERE), full.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", "import _writes; _writes.main()", *args],
        env=full, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


#: Seeded kill points of the real SIGKILL trials: within the first log's writes on any store
#: (at least 30, checked in-process above), so each trial is a kill, never a finished log.
SIGKILL_POINTS = random.Random(7).sample(range(4, 30), 2)


@pytest.mark.parametrize("k", SIGKILL_POINTS)
def test_sigkill_then_status_names_it_and_the_same_log_finishes(
    store, source, failtrace, k
) -> None:
    client = MlflowClient(store, registry_uri=store)
    model = unique("sigkill.sft")
    args = ["log", str(source), "--model-name", model, "--checkpoint", "file:///ckpt/s",
            "--tracking-uri", store, "--repeats", "2"]  # fmt: skip
    killed = _hooked(*args, env={"FAILTRACE_TEST_KILL_AT_WRITE": str(k)})
    assert killed.returncode == -9, (k, killed.stderr)
    check_links(client, model)
    state = failtrace("status", "--model-name", model, "--tracking-uri", store, "--json")
    assert "Traceback" not in state.stderr
    doc = json.loads(state.stdout)
    assert any("was interrupted" in line for line in doc["repaired"]), (k, doc)
    assert not [r for r in _all_runs(client, model) if r.info.status == "RUNNING"]
    again = failtrace(*args)
    assert again.returncode == 0, again.stderr
    _check_complete(client, model, config_runs=1, routers=1)


def _concurrent(commands: list[list[str]]) -> list[tuple[int, str, str]]:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    procs = [
        subprocess.Popen(
            [FAILTRACE, *c], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for c in commands
    ]
    outputs = [p.communicate(timeout=900) for p in procs]
    return [(p.returncode, *out) for p, out in zip(procs, outputs, strict=True)]


def test_eight_checkpoints_logged_at_once(store, source) -> None:
    model = unique("qwen2.5-sft")
    results = _concurrent([
        ["log", str(source), "--model-name", model, "--checkpoint", f"file:///ckpt/step-{i}",
         "--tracking-uri", store, "--repeats", "2", "--json"]
        for i in range(8)
    ])  # fmt: skip
    for _code, out, err in results:
        assert "Traceback" not in err and json.loads(out)["reused"] is False, err
    client = MlflowClient(store, registry_uri=store)
    versions = registry.all_versions(client, model)
    assert len(versions) == 8
    assert {v.tags[registry.TAG_CHECKPOINT] for v in versions} == {
        f"file:///ckpt/step-{i}" for i in range(8)
    }
    assert len(registry.all_versions(client, f"{model}-router")) == 8
    for mv in versions:
        logged = registry.find_logged(client, model, mv, mv.tags[registry.TAG_HASH])
        assert logged is not None and logged.described
    check_links(client, model)
    assert claims.claims_of(client, model) == []


def test_eight_identical_logs_make_one_version_one_router_one_run(store, source) -> None:
    model = unique("qwen2.5-sft")
    command = ["log", str(source), "--model-name", model, "--checkpoint", "file:///ckpt/one",
               "--tracking-uri", store, "--repeats", "2", "--json"]  # fmt: skip
    results = _concurrent([command] * 8)
    outputs = []
    for code, out, err in results:
        assert code == 0 and "Traceback" not in err, err
        outputs.append(json.loads(out))
    assert sorted(o["reused"] for o in outputs) == [False] + [True] * 7
    assert len({(o["run_id"], o["router_version"], o["model_version"]) for o in outputs}) == 1
    client = MlflowClient(store, registry_uri=store)
    assert len(registry.all_versions(client, model)) == 1
    assert len(registry.all_versions(client, f"{model}-router")) == 1
    (parent,) = _parent_runs(client, model)
    assert parent.info.status == "FINISHED"
    assert claims.claims_of(client, model) == []


def test_an_error_after_the_router_version_exists_leaves_no_orphan(
    store, source, cached_landscape, monkeypatch
) -> None:
    model = unique("orphan")
    real = mlflow.register_model

    def broken(model_uri, name, **kwargs):
        version = real(model_uri, name, **kwargs)
        if name.endswith("-router"):
            raise RuntimeError("injected failure after the router version was created")
        return version

    monkeypatch.setattr(mlflow, "register_model", broken)
    with pytest.raises(RuntimeError, match="injected"):
        _log(source, model, store, FIRST)
    monkeypatch.undo()
    client = MlflowClient(store, registry_uri=store)
    assert registry.all_versions(client, f"{model}-router") == []
    assert {r.info.status for r in _all_runs(client, model)} == {"FAILED"}
    assert claims.claims_of(client, model) == []
    _log(source, model, store, FIRST)
    _check_complete(client, model, config_runs=1, routers=1)
