"""lm-failtrace: failure recoverability from the rollouts LLM evaluations throw away.

Pipeline, one subpackage per stage, each importing only from those below it:

- ``rollouts`` the rollout row, the lm-eval run folder, readers, per-unit outcome statistics
- ``record``   lm-eval task support and model backends that keep every rollout
- ``profiles`` rollouts -> per-failure-unit profile tables (features, rescue rates)
- ``repair``   test-time operators applied to failure units -> rescue rates
- ``analysis`` regimes, routing rules and routers, honest cross-validated evaluation
- ``report``   tables, figures and the HTML report
- ``tracking`` MLflow logging, registry links, promotion

The pipeline in Python (``docs/api.md`` walks through it)::

    from lm_failtrace import run_eval, build_profiles, repair_run, read_profiles, analyze, \\
        fit_router, log_failure_landscape, promote

Names are imported on first use (PEP 562), so ``import lm_failtrace`` stays cheap and pulls in
neither lm-eval, MLflow nor torch until a function that needs them is called.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> module that defines it (the one short list of the top-level API).
_API: dict[str, str] = {
    "run_eval": "lm_failtrace.record",
    "build_profiles": "lm_failtrace.profiles",
    "add_rescue": "lm_failtrace.profiles",
    "read_profiles": "lm_failtrace.profiles",
    "write_profiles": "lm_failtrace.profiles",
    "ProfileTable": "lm_failtrace.profiles",
    "ProfileSchema": "lm_failtrace.profiles",
    "repair_run": "lm_failtrace.repair",
    "RepairConfig": "lm_failtrace.repair",
    "AnalysisConfig": "lm_failtrace.analysis",
    "analyze": "lm_failtrace.analysis",
    "fit_router": "lm_failtrace.analysis",
    "load_router": "lm_failtrace.analysis",
    "compare": "lm_failtrace.analysis",
    "log_failure_landscape": "lm_failtrace.tracking",
    "promote": "lm_failtrace.tracking",
    "status": "lm_failtrace.tracking",
    "paper_profiles": "lm_failtrace.datasets",
    "tiny_model_path": "lm_failtrace.models",
    "InputError": "lm_failtrace.errors",
}

__all__ = ["__version__", *_API]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time names load lazily
    from lm_failtrace.analysis import (
        AnalysisConfig,
        analyze,
        compare,
        fit_router,
        load_router,
    )
    from lm_failtrace.datasets import paper_profiles
    from lm_failtrace.errors import InputError
    from lm_failtrace.models import tiny_model_path
    from lm_failtrace.profiles import (
        ProfileSchema,
        ProfileTable,
        add_rescue,
        build_profiles,
        read_profiles,
        write_profiles,
    )
    from lm_failtrace.record import run_eval
    from lm_failtrace.repair import (
        RepairConfig,
        repair_run,
    )
    from lm_failtrace.tracking import (
        log_failure_landscape,
        promote,
        status,
    )


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'lm_failtrace' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
