"""What the MLflow pages carry, without a tracking store: descriptions, links, metrics, params."""

from __future__ import annotations

import pytest

from lm_failtrace.tracking import describe, registry
from lm_failtrace.tracking.inputs import backend_settings
from lm_failtrace.tracking.metrics import pooled_metrics

SHARE = {"mean": 0.3, "ci_low": 0.2, "ci_high": 0.41, "n_units": 40}
FEW = {"mean": 0.5, "ci_low": None, "ci_high": None, "n_units": 4}


def _section(units: int = 40) -> dict:
    return {
        "n_units": units,
        "regimes": {
            "counts": {"steerable": 12, "resample": 20, "beyond_reach": 8},
            "fractions": {"steerable": 0.3, "resample": 0.5, "beyond_reach": 0.2},
        },
        "honest": {"all_failures": {"best_fixed": {"mean": 0.4, "ci_low": 0.3, "ci_high": 0.5}}},
        "selection": {
            "population": "all_failures",
            "selected": "best_fixed",
            "ranking": [
                {"policy": "best_fixed", "mean": 0.4},
                {"policy": "ridge_router", "mean": 0.38},
                {"policy": "retry", "mean": 0.25},
            ],
            "margin_over_runner_up": {
                "versus": "ridge_router", "mean": 0.02, "ci_low": -0.01, "ci_high": 0.05,
            },
        },
    }  # fmt: skip


def _analysis(*cells: str) -> dict:
    return {
        "config": {"confidence": 0.95},
        "cells": {cell: _section() for cell in cells},
        "pooled": _section(40 * len(cells)),
    }


def test_intervals_say_too_few_units_and_shares_use_the_analysis_interval() -> None:
    assert describe.interval_text(SHARE) == "0.300 [0.200, 0.410]"
    assert describe.interval_text(FEW, signed=True) == "+0.500 (too few units)"
    assert describe.interval_text({"mean": None}) == "n/a"
    regimes = _section()["regimes"]
    assert describe.share_text(regimes, "steerable") == "12 (30.0%)"  # no interval given
    with_intervals = {**regimes, "intervals": {"steerable": SHARE, "resample": FEW}}
    assert describe.share_text(with_intervals, "steerable") == "12 (30.0% [20.0%, 41.0%])"
    assert describe.share_text(with_intervals, "resample") == "20 (50.0% (too few units))"


def test_gain_over_retry_and_best_fixed() -> None:
    selection = _section()["selection"]
    assert describe.gain_text(selection, "best_fixed").startswith("n/a: the selected policy")
    assert describe.gain_text(selection, "ridge_router") == "+0.020 [-0.010, 0.050]"
    # No paired margin against retry in the document: the difference of means, said so.
    assert describe.gain_text(selection, "retry") == (
        "+0.150 (difference of means; no paired interval)"
    )
    assert describe.gain_text({**selection, "margin_over_retry": {**FEW, "versus": "retry"}},
                              "retry") == "+0.500 (too few units)"  # fmt: skip
    assert "not evaluated" in describe.gain_text(selection, "paper_rule")


@pytest.mark.parametrize("uri", ["http://host:5000", "https://host/mlflow/"])
def test_links_are_urls_on_a_server(uri: str) -> None:
    where = describe.Where(uri, "7", "abc")
    base = uri.rstrip("/")
    text = describe.model_version_description(
        _analysis("m|gsm8k", "m|gpqa"),
        {"gsm8k": {"pass@1": 0.25, "pass@8": 0.5}},
        model=("m", "3"),
        router=("m-router", "2"),
        where=where,
        digest="f" * 64,
    )
    assert f"]({base}/#/models/m-router/versions/2)" in text
    assert f"]({base}/#/experiments/7/runs/abc)" in text
    assert f"]({base}/#/experiments/7/runs/abc/artifacts/report.html)" in text
    assert (
        "| `gsm8k` | 40 | 12 (30.0%) | 20 (50.0%) | 8 (20.0%) | pass@1 0.250, pass@8 0.500 |"
        in text
    )
    assert "| all tasks | 80 |" in text
    assert "**Selected policy: `best_fixed`**, held-out rescue 0.400 [0.300, 0.500]" in text
    assert "mlflow ui" not in text


def test_links_never_carry_url_credentials() -> None:
    where = describe.Where("https://alice:s3cret@host/mlflow/", "7", "abc")
    assert where.tracking_uri == "https://host/mlflow/"
    assert where.base == "https://host/mlflow/"


def test_links_are_relative_for_a_local_database() -> None:
    where = describe.Where("sqlite:////data/mlflow.db", "1", "abc")
    analysis = _analysis("m|gsm8k")
    text = describe.model_version_description(
        analysis, {}, model=("m", "3"), router=("m-router", "2"), where=where, digest="f" * 64
    )
    # `mlflow ui` on the database serves the same routes: links relative to the page work there
    assert "[`m-router` version 2](#/models/m-router/versions/2)" in text
    assert (
        "[run `abc`](#/experiments/1/runs/abc) (experiment id 1), with the report "
        "[`report.html`](#/experiments/1/runs/abc/artifacts/report.html)"
    ) in text
    assert "`mlflow ui --backend-store-uri sqlite:////data/mlflow.db`" in text
    assert "pass@k" not in text and "all tasks" not in text
    router = {
        "policy": "best_fixed", "features": ["spread"], "operators": ["retry", "budget"],
        "per_task": {"gsm8k": {"estimator": "BestFixed", "params": {}}},
        "pooled": {"estimator": "BestFixed", "params": {}},
        "selection": analysis["pooled"]["selection"],
    }  # fmt: skip
    text = describe.router_version_description(
        router, analysis, model=("m", "3"), router=("m-router", "2"), where=where, digest="f" * 64
    )
    assert text.startswith("### Router of [`m` version 3](#/models/m/versions/3)")
    assert "**`best_fixed`**" in text and "`retry`, `budget`" in text
    assert "models:/m-router/2" in text


def test_description_fits_the_registry_column() -> None:
    cells = [f"m|task{i}" for i in range(200)]
    text = describe.model_version_description(
        _analysis(*cells), {}, model=("m", "1"), router=("m-router", "1"),
        where=describe.Where("http://h", "1", "r"), digest="0" * 64,
    )  # fmt: skip
    assert len(text) <= describe.DESCRIPTION_LIMIT
    assert "180 more tasks" in text


def test_single_cell_has_no_pooled_metrics() -> None:
    assert pooled_metrics(_analysis("m|gsm8k")) == {}
    pooled = pooled_metrics(_analysis("m|gsm8k", "m|gpqa"))
    assert pooled["pooled.regimes.counts.steerable"] == 12


def test_router_link_tag_and_the_older_version_tag() -> None:
    assert registry.router_link("m", "3") == "m-router/3"
    assert registry.linked_router_version("m", {registry.TAG_ROUTER: "m-router/3"}) == "3"
    assert registry.linked_router_version("org/m", {registry.TAG_ROUTER: "org/m-router/3"}) == "3"
    assert registry.linked_router_version("m", {registry.TAG_ROUTER: "other-router/3"}) is None
    assert registry.linked_router_version("m", {registry.TAG_LEGACY_ROUTER_VERSION: "2"}) == "2"
    assert registry.linked_router_version("m", {}) is None


def test_device_is_what_the_backend_reported_never_lm_evals_default() -> None:
    stock = backend_settings({"model": "hf", "device": "cuda:0", "model_dtype": "torch.bfloat16"})
    assert "device" not in stock and stock["dtype"] == "bfloat16"
    ours = backend_settings({"device": "cuda:0", "model_device": "cpu", "model_dtype": "float32"})
    assert (ours["device"], ours["dtype"]) == ("cpu", "float32")
    assert "model_device" not in ours and "model_dtype" not in ours
