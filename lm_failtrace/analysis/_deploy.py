"""The deployable router: the policy chosen by cross-validated selection, refitted on all data.

One router serves one model version. Its parameters are plain JSON (what MLflow stores): the
policy name, and the fitted policy per task plus a pooled fit used for rows whose task is absent
or unknown, because a router calibrated on GSM8K failures should not z-score GPQA failures; and
its token budget with each fit's cost weight (``budget``), since a router fitted at one budget
routes differently from one fitted at another.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lm_failtrace.analysis._budget import NO_TOKENS
from lm_failtrace.analysis._config import AnalysisConfig
from lm_failtrace.analysis._data import prepare, unit_arrays
from lm_failtrace.analysis._honest import (
    held_and_budget,
    pool_held,
    population_spend,
    select_policy,
)
from lm_failtrace.analysis._policies import policy_from_params, policy_to_params
from lm_failtrace.analysis._registry import fit_policy, make_policy
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
    as it will be deployed) and, when the table has token counts, passes over policies whose
    held-out spend is over ``config.token_budget`` (docs/method.md section 8, *Cost*). The chosen
    policy is then fitted on every task's units and on all units together (the ``pooled``
    fallback), each fit calibrating its own cost weight; ``budget`` states the budget and those
    weights.

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
    parts = [held_and_budget(units.subset(units.task == t), config) for t in tasks]
    parts = [p for p in parts if p[0] is not None]
    if not parts:
        raise InputError("too few failure units to select a router (need at least 2 per task)")
    held, budget = pool_held(parts)
    selection = select_policy(held, config, population_spend(held, budget, config))
    name = selection["selected"]

    def fitted(mask: np.ndarray) -> dict:
        tokens = None if units.tokens is None else units.tokens[mask]
        policy = fit_policy(make_policy(name, config), units.X[mask], units.R[mask], tokens)
        return policy_to_params(policy)

    per_task = {str(t): fitted(units.task == t) for t in tasks}
    pooled = fitted(np.ones(len(units.X), dtype=bool))
    return {
        "format": ROUTER_FORMAT,
        "policy": name,
        "model": str(model or models[0]),
        "features": list(config.features),
        "operators": list(config.operators),
        "per_task": per_task,
        "pooled": pooled,
        "budget": _budget(config, units.tokens is not None, per_task, pooled),
        "selection": selection,
        "config": config.to_dict(),
    }


def _budget(config: AnalysisConfig, applied: bool, per_task: dict, pooled: dict) -> dict:
    """The router's token budget and the cost weight (lambda) each fit chose (None: no weight)."""
    out: dict = {"token_budget": config.token_budget, "applied": applied}
    if not applied:
        return {**out, "note": NO_TOKENS}
    lam = {task: spec["state"].get("lambda_") for task, spec in per_task.items()}
    return {**out, "lambda_per_task": lam, "lambda_pooled": pooled["state"].get("lambda_")}


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
