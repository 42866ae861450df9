"""Log a fitted router as a pyfunc LoggedModel from code (mlflow_plugins/router_pyfunc.py).

Models-from-code with the parameters as a JSON artifact loads wherever lm-failtrace is installed,
without unpickling our classes; an explicit signature and pip requirements keep MLflow from
loading the model in a subprocess to infer them.
"""

from __future__ import annotations

import importlib.util
import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lm_failtrace import __version__
from lm_failtrace.tracking.metrics import metric_name

#: Name of the router's LoggedModel (and of its artifact folder).
ROUTER_MODEL_NAME = "router"


def router_signature(features: Sequence[str]) -> Any:
    """Input: one double column per feature plus an optional ``task`` string; output: operator."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = [ColSpec("double", name) for name in features]
    inputs.append(ColSpec("string", "task", required=False))
    return ModelSignature(inputs=Schema(inputs), outputs=Schema([ColSpec("string")]))


def router_params(params: Mapping[str, Any]) -> dict[str, str]:
    """The LoggedModel's params: the policy, its token budget and each fit's cost weight.

    ``lambda.<task>`` / ``lambda.pooled`` is the fitted cost weight (rescue per retry-sized
    spend; ``none`` for a policy without one); no ``lambda`` params without token counts.
    """
    budget = params.get("budget") or {}
    out = {
        "policy": str(params.get("policy")),
        "token_budget": str(budget.get("token_budget")),
        "token_budget_applied": str(bool(budget.get("applied"))).lower(),
    }
    if budget.get("applied"):
        weights = {**(budget.get("lambda_per_task") or {}), "pooled": budget.get("lambda_pooled")}
        out.update({metric_name("lambda", task): str(lam).lower() for task, lam in weights.items()})
    return out


def log_router(params: Mapping[str, Any], *, tags: Mapping[str, str]) -> str:
    """Log ``params`` (from ``fit_router``) as a pyfunc in the active run; returns its model_id.

    The LoggedModel carries :func:`router_params` (its budget) besides the JSON artifact.
    """
    import mlflow
    import mlflow.pyfunc
    import pandas as pd

    # The file's path, not the module: importing it would run its set_model().
    code = importlib.util.find_spec("lm_failtrace_mlflow.router_pyfunc").origin

    with tempfile.TemporaryDirectory() as tmp:
        params_path = Path(tmp) / "router_params.json"
        params_path.write_text(json.dumps(params, indent=2, sort_keys=True))
        info = mlflow.pyfunc.log_model(
            name=ROUTER_MODEL_NAME,
            python_model=code,
            artifacts={"router_params": str(params_path)},
            signature=router_signature(params["features"]),
            # One all-zero row (every feature at its cell mean in z-space): shown in the UI, and
            # the serving example MLflow checks the signature against.
            input_example=pd.DataFrame({name: [0.0] for name in params["features"]}),
            pip_requirements=[f"lm-failtrace=={__version__}", f"mlflow=={mlflow.__version__}"],
            params=router_params(params),
            tags=dict(tags),
        )
    return info.model_id
