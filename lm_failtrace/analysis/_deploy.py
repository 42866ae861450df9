"""The deployable router: the policy chosen by cross-validated selection, refitted on all data.

One router serves one model version. Its parameters are plain JSON (what MLflow stores): the
policy name, and the fitted policy per task plus a pooled fit used for rows whose task is absent
or unknown, because a router calibrated on GSM8K failures should not z-score GPQA failures.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lm_failtrace.analysis._config import AnalysisConfig
from lm_failtrace.analysis._data import prepare, unit_arrays
from lm_failtrace.analysis._honest import HeldOut, cross_fit, select_policy
from lm_failtrace.analysis._policies import policy_from_params, policy_to_params
from lm_failtrace.analysis._registry import make_policy
from lm_failtrace.analysis._threads import single_threaded
from lm_failtrace.errors import InputError
from lm_failtrace.profiles import ProfileData

#: Version tag of the router parameter format.
ROUTER_FORMAT = "lm-failtrace-router/1"


@single_threaded
def fit_router(
    table: ProfileData, config: AnalysisConfig | None = None, model: str | None = None
) -> dict:
    """Select a policy by cross-validated rescue on all failures, refit it, return JSON params.

    Selection pools the held-out rescues of every task's units (each policy fitted within its task,
    as it will be deployed). The chosen policy is then fitted on every task's units and on all
    units together (the ``pooled`` fallback).

    Args:
        table: profile table of one model (or pass ``model`` to pick one): a
            :class:`ProfileTable`, a DataFrame, or a CSV/Parquet path.
        config: analysis configuration; unset columns are the table's
            (:meth:`AnalysisConfig.resolved`).
        model: which model's units to use when the table holds several.
    """
    table, config = prepare(table, config)
    units = unit_arrays(table, config)
    models = list(pd.unique(units.model))
    if model is None and len(models) > 1:
        raise InputError(
            f"the table holds several models ({', '.join(models)}); choose one (model=)"
        )
    if model is not None:
        if model not in models:
            raise InputError(f"unknown model {model!r}; the table has {', '.join(models)}")
        units = units.subset(units.model == model)
    tasks = list(pd.unique(units.task))
    held = [cross_fit(units.subset(units.task == t), config) for t in tasks]
    held = [h for h in held if h is not None]
    if not held:
        raise InputError("too few failure units to select a router (need at least 2 per task)")
    pooled_held = {name: HeldOut.concat([h[name] for h in held]) for name in held[0]}
    selection = select_policy(pooled_held, config)
    name = selection["selected"]

    def fitted(mask: np.ndarray) -> dict:
        return policy_to_params(make_policy(name, config).fit(units.X[mask], units.R[mask]))

    return {
        "format": ROUTER_FORMAT,
        "policy": name,
        "model": str(model or models[0]),
        "features": list(config.features),
        "operators": list(config.operators),
        "per_task": {str(t): fitted(units.task == t) for t in tasks},
        "pooled": fitted(np.ones(len(units.X), dtype=bool)),
        "selection": selection,
        "config": config.to_dict(),
    }


class DeployedRouter:
    """Routes failures with the per-task fitted policy (pooled fit for an absent/unknown task)."""

    def __init__(self, params: dict) -> None:
        if params.get("format") != ROUTER_FORMAT:
            raise InputError(f"not router parameters of format {ROUTER_FORMAT!r}")
        self.params = params
        self.features = list(params["features"])
        self.per_task = {t: policy_from_params(p) for t, p in params["per_task"].items()}
        self.pooled = policy_from_params(params["pooled"])

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        """Operator name per row of ``df`` (needs the feature columns; ``task`` optional)."""
        missing = [f for f in self.features if f not in df.columns]
        if missing:
            raise InputError(
                f"missing feature column(s) {', '.join(missing)} (the router needs "
                f"{', '.join(self.features)})"
            )
        X = df.loc[:, self.features]
        out = np.empty(len(df), dtype=object)
        tasks = df["task"].astype(str).to_numpy() if "task" in df.columns else None
        known = np.zeros(len(df), dtype=bool)
        if tasks is not None:
            for task, policy in self.per_task.items():
                mask = tasks == task
                if mask.any():
                    out[mask] = policy.predict(X.loc[mask])
                    known |= mask
        if (~known).any():
            out[~known] = self.pooled.predict(X.loc[~known])
        return out


def load_router(params: dict) -> DeployedRouter:
    """Rebuild a router from :func:`fit_router` parameters (e.g. read back from MLflow)."""
    try:
        return DeployedRouter(params)
    except KeyError as exc:
        raise InputError(f"malformed router parameters: missing {exc}") from exc
