"""Per-token logit quantities and per-rollout logit features (docs/method.md section 2).

Pure numpy on what a backend can afford to keep: the specialist's and the ancestor's top-K
log-probs (at T = 1, i.e. log-softmax over the full vocabulary, then the K largest) at every
generated position, and the token actually taken. Both the ``failtrace-hf`` backend (recording)
and the repair operators' junction detector use these functions, so the feature that is analysed
and the statistic that steers generation are the same number.

Conventions (exactly as docs/method.md, with the edge cases it leaves open written down):

- Temperature: T-scaled log-probs are ``l / T`` renormalised (log-softmax) over the returned top-K.
- A token absent from a model's top-K gets log-prob ``ABSENT_LOGPROB`` (-1000) *before* scaling.
- ``concentration = log10(max(max_t j, EPS) / max(mean_t j, EPS))`` with EPS = 1e-8: the method's
  formula, with the numerator clamped like the denominator so that a rollout with no demotion
  pressure anywhere (``j == 0`` everywhere, e.g. identical models) gets 0, not -inf.
- ``logit_dispersion = log10(max(mean window logit_var, VAR_FLOOR))`` with VAR_FLOOR = 1e-12, for
  the same reason (a fully peaked specialist has variance 0).
- ``delta_path`` and ``g_cov`` with ``|value| < NOISE`` (1e-5 nats) are set to exactly 0. The
  specialist's log-probs come from the KV-cached generation loop and the ancestor's from one full
  forward pass; in float32 the two paths differ by ~1e-7 on the *same* weights, which would
  otherwise make every position of an unchanged model count as "demoted" (``spread`` = 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOP_K = 100
COVER_K = 20
TEMPERATURE = 0.6
ABSENT_LOGPROB = -1000.0
EPS = 1e-8
NOISE = 1e-5
VAR_FLOOR = 1e-12
WINDOW = 8


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def _lookup(ids: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """values[t, k] where ids[t, k] == query[t, ...]; ABSENT_LOGPROB where the id is absent.

    ``query`` has shape (L,) or (L, Q); the result has the same shape.
    """
    q = query[..., None] if query.ndim == 2 else query[:, None, None]
    match = ids[:, None, :] == q  # (L, Q, K)
    found = match.any(axis=-1)
    picked = np.where(match, values[:, None, :], 0.0).sum(axis=-1)
    out = np.where(found, picked, np.nan)
    return out if query.ndim == 2 else out[:, 0]


@dataclass(frozen=True)
class TokenQuantities:
    """Per-position quantities of one rollout, each of shape (L,)."""

    delta_path: np.ndarray
    g_cov: np.ndarray
    j: np.ndarray
    logit_var: np.ndarray


def token_quantities(
    taken: np.ndarray,
    spec_ids: np.ndarray,
    spec_logprobs: np.ndarray,
    anc_ids: np.ndarray,
    anc_logprobs: np.ndarray,
    temperature: float = TEMPERATURE,
    cover_k: int = COVER_K,
) -> TokenQuantities:
    """Per-token quantities from both models' top-K log-probs on the same token sequence.

    Args:
        taken: (L,) the token taken at each generated position.
        spec_ids, spec_logprobs: (L, K) specialist top-K token ids and T=1 log-probs.
        anc_ids, anc_logprobs: (L, K) ancestor top-K token ids and T=1 log-probs.
        temperature: the sampling temperature T used for scaling.
        cover_k: size of the ancestor's preferred set C_t.
    """
    taken = np.asarray(taken)
    spec_scaled = _log_softmax(np.asarray(spec_logprobs, dtype=np.float64) / temperature)
    anc_scaled = _log_softmax(np.asarray(anc_logprobs, dtype=np.float64) / temperature)
    spec_ids = np.asarray(spec_ids)
    anc_ids = np.asarray(anc_ids)

    def scaled_absent(scaled: np.ndarray, raw: np.ndarray) -> np.ndarray:
        # An absent token's -1000 is scaled and renormalised with the same shift as the top-K.
        shift = scaled[:, :1] - np.asarray(raw, dtype=np.float64)[:, :1] / temperature
        return ABSENT_LOGPROB / temperature + shift[:, 0]

    spec_absent = scaled_absent(spec_scaled, spec_logprobs)
    anc_absent = scaled_absent(anc_scaled, anc_logprobs)

    lp_s = _lookup(spec_ids, spec_scaled, taken)
    lp_a = _lookup(anc_ids, anc_scaled, taken)
    lp_s = np.where(np.isnan(lp_s), spec_absent, lp_s)
    lp_a = np.where(np.isnan(lp_a), anc_absent, lp_a)
    delta_path = lp_s - lp_a

    order = np.argsort(-np.asarray(anc_logprobs), axis=-1, kind="stable")[:, :cover_k]
    cover = np.take_along_axis(anc_ids, order, axis=-1)  # (L, cover_k)
    p_a_cover = np.exp(np.take_along_axis(anc_scaled, order, axis=-1)).sum(axis=-1)
    lp_s_cover = _lookup(spec_ids, spec_scaled, cover)
    lp_s_cover = np.where(np.isnan(lp_s_cover), spec_absent[:, None], lp_s_cover)
    p_s_cover = np.exp(lp_s_cover).sum(axis=-1)
    g_cov = np.log((p_a_cover + EPS) / (p_s_cover + EPS))

    delta_path = np.where(np.abs(delta_path) < NOISE, 0.0, delta_path)
    g_cov = np.where(np.abs(g_cov) < NOISE, 0.0, g_cov)
    j = np.maximum(0.0, delta_path) + np.maximum(0.0, g_cov)

    weights = np.exp(spec_scaled)
    raw = np.asarray(spec_logprobs, dtype=np.float64)
    mean = (weights * raw).sum(axis=-1)
    logit_var = (weights * (raw - mean[:, None]) ** 2).sum(axis=-1)
    return TokenQuantities(delta_path, g_cov, j, logit_var)


def rollout_features(
    j: np.ndarray, logit_var: np.ndarray, window: int = WINDOW
) -> dict[str, float]:
    """``spread``, ``concentration``, ``logit_dispersion`` of one rollout (padding dropped)."""
    j = np.asarray(j, dtype=np.float64)
    logit_var = np.asarray(logit_var, dtype=np.float64)
    if j.size == 0:
        return {
            "spread": float("nan"),
            "concentration": float("nan"),
            "logit_dispersion": float("nan"),
        }
    peak = int(np.argmax(j))
    lo, hi = max(0, peak - window), min(j.size, peak + window + 1)
    return {
        "spread": float((j > 0).mean()),
        "concentration": float(np.log10(max(j.max(), EPS) / max(j.mean(), EPS))),
        "logit_dispersion": float(np.log10(max(logit_var[lo:hi].mean(), VAR_FLOOR))),
    }


def logit_features(
    taken: np.ndarray,
    spec_ids: np.ndarray,
    spec_logprobs: np.ndarray,
    anc_ids: np.ndarray,
    anc_logprobs: np.ndarray,
    temperature: float = TEMPERATURE,
) -> dict[str, float]:
    """One rollout's logit features from both models' top-K at its generated positions.

    The one place recording computes them, whether the top-K came from ``failtrace-hf``'s
    sampling loop or from two completions servers.
    """
    q = token_quantities(taken, spec_ids, spec_logprobs, anc_ids, anc_logprobs, temperature)
    return rollout_features(q.j, q.logit_var)
