"""The router as an MLflow pyfunc, logged from code (no pickled objects).

MLflow copies this file into the logged model; its parameters are the JSON artifact
``router_params`` written by :func:`lm_failtrace.analysis.fit_router`. Loading needs only
lm-failtrace installed: ``mlflow.pyfunc.load_model("models:/NAME-router@ALIAS").predict(df)``
with one row per failure, the feature columns, and an optional ``task`` column (pooled parameters
for rows without one or with a task the router was not fitted on). It returns the operator name
to apply to each row.
"""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


class FailtraceRouter(PythonModel):
    """Routes failures to operators with the fitted parameters in the ``router_params`` artifact."""

    def load_context(self, context):
        from lm_failtrace.analysis import load_router

        with open(context.artifacts["router_params"]) as handle:
            self._router = load_router(json.load(handle))

    # The type hint tells MLflow the input is a DataFrame (validated against the logged signature).
    def predict(self, context, model_input: pd.DataFrame, params=None):
        return np.asarray(self._router.predict(model_input), dtype=object)


mlflow.models.set_model(FailtraceRouter())
