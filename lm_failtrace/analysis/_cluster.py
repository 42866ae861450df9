"""Clustering of failure units in feature space ("failure topography", docs/method.md section 7).

k-means on z-scored features (population mean and std of the units passed in); k is the value in
``config.k_range`` with the highest silhouette score (computed on at most 2,000 units, sampled with
the configured seed, so large tables stay fast). Stability: refit k-means on ``n_bootstrap``
bootstrap resamples, label every unit with each refit, and average the adjusted Rand index (ARI)
against the full-data clustering. Agreement: ARI of the clusters with each given labelling
(regime, model, cell); 0 = chance, 1 = identical partitions.

A large population (more than :data:`LARGE_POPULATION` units) is clustered on a seeded random
sample of that many units (``n_sampled``): the fits, the silhouette, the bootstrap refits and the
ARIs are those of the sample; ``sizes`` counts every unit by its nearest centre.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score

from lm_failtrace.analysis._config import AnalysisConfig
from lm_failtrace.analysis._data import sample_index
from lm_failtrace.analysis._defaults import LARGE_POPULATION
from lm_failtrace.analysis._features import standardize, zscore

_SILHOUETTE_SAMPLE = 2000
_N_INIT = 4


def cluster_units(X: np.ndarray, labelings: dict[str, np.ndarray], config: AnalysisConfig) -> dict:
    """Cluster ``X`` and compare the clusters with each labelling (see the module docstring)."""
    low, high = config.k_range
    z_all = zscore(X, *standardize(X))
    sample = sample_index(len(X), LARGE_POPULATION, config.random_state)
    z = z_all if sample is None else z_all[sample]
    n = len(z)
    candidates = [k for k in range(max(2, low), high + 1) if k < n]
    if not candidates or len(np.unique(z, axis=0)) < 3:
        return {"skipped": "too few distinct units to cluster"}
    rng = np.random.default_rng(config.random_state)
    silhouette_sample = rng.choice(n, size=min(n, _SILHOUETTE_SAMPLE), replace=False)
    fits, silhouettes = {}, {}
    for k in candidates:
        fits[k] = KMeans(k, n_init=_N_INIT, random_state=config.random_state).fit(z)
        labels = fits[k].labels_[silhouette_sample]
        silhouettes[k] = (
            float(silhouette_score(z[silhouette_sample], labels))
            if len(np.unique(labels)) > 1
            else -1.0
        )
    k = max(candidates, key=lambda c: (silhouettes[c], -c))
    reference = fits[k].labels_
    stability = []
    for b in range(config.n_bootstrap):
        idx = rng.integers(0, n, size=n)
        refit = KMeans(k, n_init=_N_INIT, random_state=config.random_state + b + 1).fit(z[idx])
        stability.append(adjusted_rand_score(reference, refit.predict(z)))
    everyone = reference if sample is None else fits[k].predict(z_all)
    if sample is not None:
        labelings = {name: values[sample] for name, values in labelings.items()}
    out = {
        "method": "k-means on z-scored features",
        "criterion": f"max silhouette over k={candidates[0]}..{candidates[-1]}",
        "k": int(k),
        "silhouette": {str(c): s for c, s in silhouettes.items()},
        "sizes": np.bincount(everyone, minlength=k).tolist(),
        "stability_ari_mean": float(np.mean(stability)),
        "stability_ari_std": float(np.std(stability)),
        "n_bootstrap": config.n_bootstrap,
        "agreement_ari": {
            name: float(adjusted_rand_score(values.astype(str), reference))
            for name, values in labelings.items()
        },
    }
    if sample is not None:
        out["n_sampled"] = n
    return out
