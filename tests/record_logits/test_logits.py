"""Logit features against an independent full-vocabulary computation (docs/method.md section 2)."""

from __future__ import annotations

import numpy as np
import pytest

from lm_failtrace.record.logits import rollout_features, token_quantities

V, L, T = 30, 40, 0.6


def _topk(logits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ids = np.argsort(-logp, axis=-1)[:, :k]
    return ids, np.take_along_axis(logp, ids, axis=-1)


def _full_reference(spec_logits, anc_logits, taken, cover_k=20):
    """Straightforward per-position loops over full softmax distributions at temperature T."""
    out = {"delta_path": [], "g_cov": [], "j": [], "logit_var": []}
    for t in range(len(taken)):
        ps = np.exp(spec_logits[t] / T) / np.exp(spec_logits[t] / T).sum()
        pa = np.exp(anc_logits[t] / T) / np.exp(anc_logits[t] / T).sum()
        d = np.log(ps[taken[t]]) - np.log(pa[taken[t]])
        cover = np.argsort(-anc_logits[t])[:cover_k]
        g = np.log((pa[cover].sum() + 1e-8) / (ps[cover].sum() + 1e-8))
        d = 0.0 if abs(d) < 1e-5 else d  # the documented float-noise floor
        g = 0.0 if abs(g) < 1e-5 else g
        lp1 = spec_logits[t] - np.log(np.exp(spec_logits[t]).sum())
        mean = (ps * lp1).sum()
        out["delta_path"].append(d)
        out["g_cov"].append(g)
        out["j"].append(max(0, d) + max(0, g))
        out["logit_var"].append((ps * (lp1 - mean) ** 2).sum())
    return {k: np.array(v) for k, v in out.items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_full_topk_matches_full_softmax(seed: int) -> None:
    rng = np.random.default_rng(seed)
    spec = rng.normal(size=(L, V)) * 2
    anc = spec + rng.normal(size=(L, V))
    taken = rng.integers(0, V, size=L)
    s_ids, s_lp = _topk(spec, V)
    a_ids, a_lp = _topk(anc, V)
    q = token_quantities(taken, s_ids, s_lp, a_ids, a_lp, temperature=T)
    ref = _full_reference(spec, anc, taken)
    for name in ref:
        np.testing.assert_allclose(getattr(q, name), ref[name], atol=1e-5, rtol=0)
    feats = rollout_features(q.j, q.logit_var)
    j = ref["j"]
    peak = int(np.argmax(j))
    assert feats["spread"] == pytest.approx((j > 0).mean(), abs=1e-12)
    assert feats["concentration"] == pytest.approx(np.log10(j.max() / j.mean()), abs=1e-5)
    window = ref["logit_var"][max(0, peak - 8) : peak + 9]
    assert feats["logit_dispersion"] == pytest.approx(np.log10(window.mean()), abs=1e-5)


def test_identical_models_have_no_demotion_pressure() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(L, V))
    taken = rng.integers(0, V, size=L)
    ids, lp = _topk(logits, 10)
    q = token_quantities(taken, ids, lp, ids, lp)
    assert np.all(q.delta_path == 0)
    assert np.all(q.j == 0)
    feats = rollout_features(q.j, q.logit_var)
    assert feats["spread"] == 0
    assert feats["concentration"] == 0


def test_absent_token_uses_floor_before_scaling() -> None:
    # A token outside the specialist's top-K gets -1000 before scaling: a huge negative delta.
    ids = np.array([[0, 1]])
    lp = np.log(np.array([[0.6, 0.4]]))
    anc_ids = np.array([[2, 0]])
    q = token_quantities(np.array([2]), ids, lp, anc_ids, lp)
    expected_spec = -1000 / T - np.log(np.exp(lp / T).sum())
    expected_anc = lp[0, 0] / T - np.log(np.exp(lp / T).sum())
    assert q.delta_path[0] == pytest.approx(expected_spec - expected_anc)
