"""MLflow tracking: failure landscapes attached to registered models, routers promoted with them.

Public API (what ``failtrace log``, ``promote`` and ``status`` call):

- :func:`log_failure_landscape` -> :class:`LogResult`
- :func:`promote`; :func:`status` -> :class:`StatusReport` (per-alias links and their
  consistency, and what interrupted logs left)
- :func:`resolve_tracking_uri`, :func:`tracking_client`
- :func:`experiment_name`, :func:`router_name` (naming conventions), link tag names in
  :mod:`lm_failtrace.tracking.registry`

Importing this package does not import MLflow; the functions do, when called. It does turn
MLflow's usage telemetry off for this process unless the environment says otherwise
(``MLFLOW_DISABLE_TELEMETRY``): MLflow's telemetry thread, failing to fetch its configuration,
removes an environment variable while MLflow's own code in the main thread iterates over
``os.environ``, which made one of eight concurrent ``failtrace log`` processes fail with
``KeyError: '_MLFLOW_TELEMETRY_SESSION_ID'``. This must happen before MLflow is first imported
(MLflow starts its telemetry client on import).
"""

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from lm_failtrace.tracking.logging import LogResult, log_failure_landscape
from lm_failtrace.tracking.promote import AliasStatus, StatusReport, promote, status
from lm_failtrace.tracking.registry import experiment_name, router_name
from lm_failtrace.tracking.uri import resolve_tracking_uri, tracking_client

__all__ = [
    "AliasStatus",
    "LogResult",
    "StatusReport",
    "experiment_name",
    "log_failure_landscape",
    "promote",
    "resolve_tracking_uri",
    "router_name",
    "status",
    "tracking_client",
]
