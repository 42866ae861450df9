"""Regime recoverability, model identification and clustering on tables with known structure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lm_failtrace.analysis import analyze
from lm_failtrace.profiles import validate_profiles


def _two_models(n=80, gap=6.0, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for m, model in enumerate(("a", "b")):
        frames.append(
            pd.DataFrame(
                {
                    "cell": f"{model}|t",
                    "model": model,
                    "task": "t",
                    "problem_id": [str(i) for i in range(n)],
                    "spread": rng.uniform(0.4, 0.5, n),
                    "concentration": rng.normal(gap * m, 0.3, n),
                    "logit_dispersion": rng.normal(-gap * m, 0.3, n),
                    **{
                        op: rng.integers(0, 21, n) / 20
                        for op in (
                            "retry",
                            "sparse_steer",
                            "sparse_steer_random",
                            "local_temp",
                            "dense_steer",
                        )
                    },
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_separated_models_are_identified_and_clustered(fast):
    doc = analyze(validate_profiles(_two_models()), fast)
    ident = doc["pooled"]["model_identification"]
    assert ident["majority_rate"] == 0.5
    assert ident["accuracy_mean"] > 0.95
    cl = doc["pooled"]["clustering"]
    assert cl["k"] == 2 and cl["sizes"] == [80, 80]
    assert cl["agreement_ari"]["model"] > 0.95 and cl["agreement_ari"]["cell"] > 0.95
    assert cl["stability_ari_mean"] > 0.95
    assert abs(cl["agreement_ari"]["regime"]) < 0.2  # rescue rates are independent noise


def test_unrecoverable_regimes_do_not_beat_majority_by_much(fast):
    doc = analyze(validate_profiles(_two_models(seed=3)), fast)
    rec = doc["cells"]["a|t"]["recoverability"]
    assert rec["n_classes"] >= 2
    assert rec["accuracy_mean"] < rec["majority_rate"] + 0.15
    assert rec["accuracy_std"] >= 0


def test_single_model_skips_identification(synthetic, fast):
    frame = synthetic.frame[synthetic.frame["model"] == "m1"]
    doc = analyze(validate_profiles(frame), fast)
    assert "skipped" in doc["pooled"]["model_identification"]


def test_recoverability_survives_training_folds_with_one_class() -> None:
    """A rare class absent from some training folds: predicted constant, not a failed fit."""
    import warnings

    from lm_failtrace.analysis import AnalysisConfig
    from lm_failtrace.analysis._recover import cv_accuracy

    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 2))
    labels = np.array(["beyond_reach"] * 11 + ["resample"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = cv_accuracy(X, labels, AnalysisConfig(n_repeats=3))
    assert np.isfinite(out["accuracy_mean"])
    assert out["majority_rate"] == pytest.approx(11 / 12)
