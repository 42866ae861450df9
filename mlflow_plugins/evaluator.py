"""Model evaluator ``failtrace``: rollouts in, failure profiles and landscape logged to the run.

Registered as the ``mlflow.model_evaluator`` entry point ``failtrace``::

    mlflow.models.evaluate(data=rollouts, model_type="text", evaluators=["failtrace"],
                           model_id=model_id, evaluator_config={"failtrace": {"rescue": rescue}})

(MLflow requires ``model_type`` or ``extra_metrics``; any type is accepted by this evaluator.)

``data`` is a rollout table (one row per rollout: model, task, problem_id, answer, correct, and
optionally generated_tokens, finish_reason; README "generic rollout table"). It is turned into
profiles by the same builder as ``failtrace profile``. Regimes and routing need measured rescue
rates, which rollouts alone do not hold: pass them as ``rescue`` (a DataFrame keyed by model,
task, problem_id with one column per operator, e.g. from ``failtrace repair``), and the
analysis, figures and report are logged exactly as ``failtrace log`` logs them (the router is not
registered: that is ``failtrace log``'s job). Without ``rescue``, the profiles and pass@1 are
logged. MLflow attaches the returned metrics to ``model_id``.

Config keys: ``rescue``, ``features`` and ``operators`` (default: what the table holds, i.e. the
features the rollouts define and the operator columns of ``rescue``; the analysis keeps the
features whose operator is present and says which it dropped), ``n_repeats``, ``n_folds``,
``random_state``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from mlflow.models.evaluation import EvaluationResult, ModelEvaluator

from lm_failtrace.errors import InputError
from lm_failtrace.profiles import ProfileSchema, validate_profiles

if TYPE_CHECKING:
    from lm_failtrace.profiles import ProfileTable
    from lm_failtrace.profiles.build import ProfileBuild

_KEYS = ["model", "task", "problem_id"]


def _profiles(rollouts: pd.DataFrame) -> ProfileBuild:
    from lm_failtrace.profiles.build import build_profiles

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rollouts.parquet"
        rollouts.to_parquet(path, index=False)
        return build_profiles(path)


def _table(built: ProfileBuild, rescue: pd.DataFrame, request: ProfileSchema) -> ProfileTable:
    """The profiles with the rescue columns; its schema: the built features, rescue's operators.

    Operator columns of ``rescue`` are recognised by the rule a CSV profile table is read with
    (:meth:`ProfileSchema.from_frame`), so a ``failtrace repair`` output works as it is.
    """
    missing = [k for k in _KEYS if k not in rescue.columns]
    if missing:
        raise InputError(f"rescue table lacks key column(s) {', '.join(missing)}")
    operators = ProfileSchema.from_frame(rescue).operators
    declared = ProfileSchema(built.schema.features, operators)
    schema = request.resolved(declared)
    absent = [op for op in schema.operators or () if op not in rescue.columns]
    if absent:
        raise InputError(f"rescue table lacks operator column(s) {', '.join(absent)}")
    merged = built.frame.merge(rescue[[*_KEYS, *(schema.operators or ())]], on=_KEYS, how="left")
    return validate_profiles(merged, schema, source="mlflow.models.evaluate data")


class FailtraceEvaluator(ModelEvaluator):
    """Computes failure profiles (and, given rescue rates, the landscape) from a rollout table."""

    @classmethod
    def can_evaluate(cls, *, model_type, evaluator_config, **kwargs) -> bool:
        return True

    def evaluate(self, *, model_type, dataset, run_id, evaluator_config, model=None, **kwargs):
        import mlflow

        from lm_failtrace.analysis import AnalysisConfig
        from lm_failtrace.tracking.inputs import LandscapeInput
        from lm_failtrace.tracking.landscape import compute_landscape
        from lm_failtrace.tracking.logging import headline_metrics, model_metrics, write_landscape

        config = dict(evaluator_config or {})
        built = _profiles(dataset.features_data)
        pass1 = {f"{task}.pass_at_1": counts.pass_at_1 for (_, task), counts in built.cells.items()}
        rescue = config.get("rescue")
        if rescue is None:
            with tempfile.TemporaryDirectory() as tmp:
                built.frame.to_csv(Path(tmp) / "profiles.csv", index=False)
                mlflow.log_artifacts(tmp)
            metrics = {**pass1, "n_failure_units": float(len(built.frame))}
            mlflow.log_metrics(metrics)
            return EvaluationResult(metrics=metrics, artifacts={})
        request = ProfileSchema.from_options(config.get("features"), config.get("operators"))
        table = _table(built, rescue, request)
        analysis_config = AnalysisConfig(
            features=request.features,
            operators=request.operators,
            n_repeats=int(config.get("n_repeats", 10)),
            n_folds=int(config.get("n_folds", 5)),
            random_state=int(config.get("random_state", 0)),
        ).resolved(table.schema)
        landscape = compute_landscape(
            table,
            analysis_config,
            title="Failure landscape (mlflow.models.evaluate)",
            context={"run": run_id, "model_id": kwargs.get("model_id")},
            with_router=False,
        )
        inp = LandscapeInput(table, "mlflow.models.evaluate data")
        write_landscape(landscape, inp, analysis_config, model_id=None, run_tags={})
        metrics = {**model_metrics(headline_metrics(landscape, inp)), **pass1}
        mlflow.log_metrics(pass1)
        return EvaluationResult(metrics=metrics, artifacts={})
