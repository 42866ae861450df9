"""Run context provider: tags every fluent MLflow run with the versions that produced it.

Registered as the ``mlflow.run_context_provider`` entry point ``failtrace``. Tags:
``failtrace.version`` (lm-failtrace, with the git commit when run from a checkout),
``failtrace.lm_eval_version`` and ``failtrace.mlflow_version``. Versions are read from package
metadata, so this never imports lm-eval.
"""

from __future__ import annotations

from importlib import metadata

from mlflow.tracking.context.abstract_context import RunContextProvider


def _installed(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


class FailtraceRunContext(RunContextProvider):
    """Adds lm-failtrace, lm-eval and MLflow versions to runs started with ``mlflow.start_run``."""

    def in_context(self) -> bool:
        return True

    def tags(self) -> dict[str, str]:
        from lm_failtrace.tracking.inputs import code_version

        return {
            "failtrace.version": code_version(),
            "failtrace.lm_eval_version": _installed("lm-eval"),
            "failtrace.mlflow_version": _installed("mlflow"),
        }
