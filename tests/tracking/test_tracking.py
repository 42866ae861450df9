"""MLflow tracking end to end: a real server, the local sqlite default, real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from lm_failtrace.analysis import AnalysisConfig
from lm_failtrace.profiles import PAPER_OPERATORS
from lm_failtrace.tracking import log_failure_landscape, registry

pytestmark = pytest.mark.slow

FEATURES = ["spread", "concentration", "logit_dispersion"]


def _log(failtrace, source: Path, name: str, uri: str, *extra: str) -> dict:
    proc = failtrace(
        "log", str(source), "--model-name", name, "--checkpoint", f"file:///ckpt/{name}",
        "--tracking-uri", uri, "--repeats", "2", "--json", *extra,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _lm_eval_run(folder: Path, config: dict) -> Path:
    """An lm-eval ``--output_path`` holding only a results file (pass@k and the run's config)."""
    results = {"results": {"gsm8k": {"pass@1,none": 0.625, "pass@8,none": 0.875}}, "config": config}
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "results_2026-01-01T00-00-00.json").write_text(json.dumps(results))
    return folder


def test_log_promote_status_and_load_router_by_alias(server, sft4b_csv, failtrace, tmp_path):
    # lm-eval's `device` is its --device default, not what the backend ran on: not logged.
    run_dir = _lm_eval_run(
        tmp_path / "lm_eval", {"model": "hf", "device": "cuda:0", "model_dtype": "torch.bfloat16"}
    )
    first = _log(failtrace, sft4b_csv, "sft4b", server, "--lm-eval-run", str(run_dir))
    assert first["reused"] is False and first["model_version"] == "1"
    again = _log(failtrace, sft4b_csv, "sft4b", server)
    assert again["reused"] is True
    assert (again["router_version"], again["run_id"]) == (first["router_version"], first["run_id"])

    client = MlflowClient(server, registry_uri=server)
    assert len(client.search_model_versions("name = 'sft4b-router'")) == 1
    assert len(client.search_model_versions("name = 'sft4b'")) == 1
    mv = client.get_model_version("sft4b", "1")
    assert mv.tags[registry.TAG_RUN] == first["run_id"]
    assert mv.tags[registry.TAG_ROUTER] == f"sft4b-router/{first['router_version']}"
    assert registry.TAG_LEGACY_ROUTER_VERSION not in mv.tags
    rv = client.get_model_version("sft4b-router", first["router_version"])
    assert rv.tags[registry.TAG_SOURCE_NAME] == "sft4b"
    assert rv.tags[registry.TAG_SOURCE_VERSION] == "1"
    assert rv.tags[registry.TAG_RUN] == first["run_id"]

    parent = client.get_run(first["run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["failtrace.version"]  # run context provider entry point
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # opens on runs
    run_url = f"{server}/#/experiments/{experiment.experiment_id}/runs/{first['run_id']}"
    # The model version's page: regime shares, policy, pass@k, links to the router and the run.
    text = mv.description
    assert (
        "| task | failure units | steerable | resample | beyond reach | pass@k (lm-eval) |" in text
    )
    row = next(line for line in text.splitlines() if line.startswith("| `gsm8k` |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "59"
    for regime, shown in zip(("steerable", "resample", "beyond_reach"), cells[2:5], strict=True):
        count = int(parent.data.metrics[f"gsm8k.regimes.counts.{regime}"])
        assert shown.startswith(f"{count} (") and "%" in shown
    assert "pass@1 0.625, pass@8 0.875" in text
    assert "**Selected policy: `" in text and "gain over the best fixed operator" in text
    assert f"]({server}/#/models/sft4b-router/versions/{first['router_version']})" in text
    assert f"]({run_url})" in text and f"]({run_url}/artifacts/report.html)" in text
    # ... and the router version's: the model version it was fitted for, what it routes.
    assert f"### Router of [`sft4b` version 1]({server}/#/models/sft4b/versions/1)" in (
        rv.description
    )
    assert "features (inputs): `spread`, `concentration`, `logit_dispersion`" in rv.description
    # Params: what the backend reported, nothing guessed.
    assert "lm_eval.device" not in parent.data.params
    assert parent.data.params["lm_eval.dtype"] == "bfloat16"
    # One cell: its metrics are not repeated under pooled.*.
    assert not [k for k in parent.data.metrics if k.startswith("pooled.")]
    assert "gsm8k.pass_at_1" in parent.data.metrics
    # The task is the runs' evaluation dataset; the profiles are also a table artifact.
    child = client.get_run(first["task_runs"]["sft4b|gsm8k"])
    assert child.data.tags["mlflow.parentRunId"] == first["run_id"]
    for run in (parent, child):
        (used,) = run.inputs.dataset_inputs
        assert used.dataset.name == "gsm8k"
        assert {t.key: t.value for t in used.tags}["mlflow.data.context"] == "evaluation"
        assert json.loads(run.data.tags["mlflow.loggedArtifacts"]) == [
            {"path": "profiles.json", "type": "table"}
        ]
    table = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=first["run_id"], artifact_path="profiles.json", tracking_uri=server
            )
        ).read_text()
    )
    assert len(table["data"]) == 59 and "logit_dispersion" in table["columns"]
    assert "honest.all_failures.ridge_router.ci_low" in child.data.metrics
    assert (
        child.data.metrics["regimes.counts.steerable"]
        + child.data.metrics["regimes.counts.resample"]
        + child.data.metrics["regimes.counts.beyond_reach"]
        == 59
    )
    files = {a.path for a in client.list_artifacts(first["run_id"])}
    assert {"report.html", "analysis.json", "profiles.csv", "profiles.json", "figures"} <= files
    model_id = registry.logged_model_id(mv)
    logged = client.get_logged_model(model_id)
    assert any(m.key == "gsm8k.selection.mean" for m in logged.metrics)
    # The LoggedModel's "Datasets used" comes from its metrics' datasets.
    assert {m.dataset_name for m in logged.metrics} == {"gsm8k"}

    refused = failtrace(
        "promote", "--model-name", "sft4b", "--version", "1", "--alias", "latest",
        "--tracking-uri", server,
    )  # fmt: skip
    assert refused.returncode == 2 and "invalid alias" in refused.stderr
    promoted = failtrace(
        "promote", "--model-name", "sft4b", "--version", "1", "--alias", "champion",
        "--tracking-uri", server,
    )  # fmt: skip
    assert promoted.returncode == 0, promoted.stderr
    state = failtrace("status", "--model-name", "sft4b", "--tracking-uri", server, "--json")
    assert state.returncode == 0, state.stderr
    (row,) = json.loads(state.stdout)["aliases"]
    assert row["alias"] == "champion" and row["consistent"] is True
    assert (row["model_version"], row["router_alias_version"]) == ("1", first["router_version"])

    # A router alias moved by hand is reported, not repaired.
    client.set_registered_model_alias("sft4b-router", "staging", first["router_version"])
    state = failtrace("status", "--model-name", "sft4b", "--tracking-uri", server, "--json")
    assert state.returncode == 1
    rows = {r["alias"]: r for r in json.loads(state.stdout)["aliases"]}
    assert rows["staging"]["consistent"] is False and rows["champion"]["consistent"] is True

    features = pd.read_csv(sft4b_csv).loc[:5, FEATURES]
    features["task"] = ["gsm8k", "gsm8k", "unknown", "gsm8k", "gsm8k", "gsm8k"]
    script = textwrap.dedent(f"""
        import sys, mlflow, pandas as pd
        mlflow.set_tracking_uri({server!r})
        model = mlflow.pyfunc.load_model("models:/sft4b-router@champion")
        out = model.predict(pd.read_json(sys.stdin, orient="records"))
        print("ROUTES", ",".join(map(str, out)))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], input=features.to_json(orient="records"),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    routes = proc.stdout.split("ROUTES ", 1)[1].split()[0].split(",")
    from lm_failtrace.analysis import load_router

    params = json.loads(
        Path(mlflow.artifacts.download_artifacts(
            client.get_model_version_download_uri("sft4b-router", first["router_version"]),
            tracking_uri=server,
        ), "artifacts", "router_params.json").read_text()
    )  # fmt: skip
    assert routes == list(load_router(params).predict(features))
    assert set(routes) <= set(PAPER_OPERATORS)


def test_failure_mid_logging_leaves_nothing_dangling(
    server, cell_csv, tmp_path, monkeypatch, failtrace
) -> None:
    source = cell_csv(tmp_path / "p.csv", "sft0p6b|gsm8k")
    config = AnalysisConfig(n_repeats=2)
    client = MlflowClient(server, registry_uri=server)

    def broken(*args, **kwargs):
        raise RuntimeError("injected failure while logging the router")

    monkeypatch.setattr("lm_failtrace.tracking.logging.log_router", broken)
    with pytest.raises(RuntimeError, match="injected"):
        log_failure_landscape(
            source, "sft0p6b", checkpoint="file:///ckpt/sft0p6b", tracking_uri=server,
            config=config, progress=None,
        )  # fmt: skip
    monkeypatch.undo()
    mv = client.get_model_version("sft0p6b", "1")
    registration = {registry.TAG_CHECKPOINT, registry.TAG_ATTEMPT}
    assert not any(k.startswith("failtrace.") and k not in registration for k in mv.tags)
    assert client.search_model_versions("name = 'sft0p6b-router'") == []
    runs = mlflow.search_runs(experiment_names=["failtrace/sft0p6b"], output_format="list")
    assert runs and all(r.info.status == "FAILED" for r in runs)

    # Failing at the commit (the model version's router tag) removes the router version it made;
    # the description, written only after the commit, was never touched.
    client.update_model_version("sft0p6b", "1", description="notes by hand")
    real = MlflowClient.set_model_version_tag
    calls = {"n": 0}

    def flaky(self, name, version, key, value):
        if name == "sft0p6b" and key == registry.TAG_ROUTER:
            assert client.get_model_version("sft0p6b-router", "1").tags[registry.TAG_ATTEMPT]
            calls["n"] += 1
            raise RuntimeError("injected failure while tagging")
        return real(self, name, version, key, value)

    monkeypatch.setattr(MlflowClient, "set_model_version_tag", flaky)
    with pytest.raises(RuntimeError, match="tagging"):
        log_failure_landscape(
            source, "sft0p6b", model_version="1", tracking_uri=server, config=config,
            progress=None,
        )  # fmt: skip
    monkeypatch.undo()
    assert calls["n"] == 1
    assert client.search_model_versions("name = 'sft0p6b-router'") == []
    mv = client.get_model_version("sft0p6b", "1")
    assert registry.TAG_RUN not in mv.tags and registry.TAG_ROUTER not in mv.tags
    assert mv.description == "notes by hand"
    runs = mlflow.search_runs(experiment_names=["failtrace/sft0p6b"], output_format="list")
    assert len(runs) == 4 and all(r.info.status == "FAILED" for r in runs)
    promote = failtrace(
        "promote", "--model-name", "sft0p6b", "--version", "1", "--alias", "champion",
        "--tracking-uri", server,
    )  # fmt: skip
    assert promote.returncode == 2 and "no failtrace.router tag" in promote.stderr

    # A version linked by the older failtrace.router_version tag is re-linked by the new tag.
    client.set_model_version_tag("sft0p6b", "1", registry.TAG_LEGACY_ROUTER_VERSION, "9")
    done = log_failure_landscape(
        source, "sft0p6b", model_version="1", tracking_uri=server, config=config,
        progress=None,
    )  # fmt: skip
    mv = client.get_model_version("sft0p6b", "1")
    assert registry.TAG_LEGACY_ROUTER_VERSION not in mv.tags
    assert mv.tags[registry.TAG_ROUTER] == f"sft0p6b-router/{done.router_version}"
    promote = failtrace(
        "promote", "--model-name", "sft0p6b", "--version", "1", "--alias", "champion",
        "--tracking-uri", server,
    )  # fmt: skip
    assert promote.returncode == 0, promote.stderr


def test_local_sqlite_default_with_two_concurrent_loggers(cell_csv, tmp_path: Path) -> None:
    sources = {
        name: cell_csv(tmp_path / f"{name}.csv", cell)
        for name, cell in (("sft4b", "sft4b|gsm8k"), ("grpo", "grpo1p7b|gpqa"))
    }
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in __import__("os").environ.items() if k != "MLFLOW_TRACKING_URI"}
    procs = [
        subprocess.Popen(
            [
                str(Path(sys.executable).parent / "failtrace"),
                "log",
                str(src),
                "--model-name",
                name,
                "--checkpoint",
                f"file:///ckpt/{name}",
                "--repeats",
                "2",
                "--json",
            ],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, src in sources.items()
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert json.loads(out)["tracking_uri"] == f"sqlite:///{work / 'mlflow.db'}"
    db = f"sqlite:///{work / 'mlflow.db'}"
    client = MlflowClient(db, registry_uri=db)
    for name in sources:
        (rv,) = client.search_model_versions(f"name = '{name}-router'")
        assert rv.tags[registry.TAG_SOURCE_NAME] == name
        experiment = client.get_experiment_by_name(f"failtrace/{name}")
        assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
        # No web server behind a local database: links are relative to the UI showing the page.
        text = client.get_model_version(name, "1").description
        route = f"#/models/{name}-router/versions/{rv.version}"
        assert f"[`{name}-router` version {rv.version}]({route})" in text
        assert f"mlflow ui --backend-store-uri {db}" in text


def test_unreachable_server_is_one_clear_error(sft4b_csv, tmp_path, failtrace, free_port) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    proc = failtrace(
        "log", str(sft4b_csv), "--model-name", "x", "--checkpoint", "file:///x",
        "--tracking-uri", uri, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2
    assert uri in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "mlflow.db").exists()
