"""MLflow tracking: failure landscapes attached to registered models, routers promoted with them.

Public API (what ``failtrace log``, ``promote`` and ``status`` call):

- :func:`log_failure_landscape` -> :class:`LogResult`
- :func:`promote`, :func:`status` -> per-alias links and their consistency
- :func:`resolve_tracking_uri`, :func:`tracking_client`
- :func:`experiment_name`, :func:`router_name` (naming conventions), link tag names in
  :mod:`lm_failtrace.tracking.registry`

Importing this package does not import MLflow; the functions do, when called.
"""

from lm_failtrace.tracking.logging import LogResult, log_failure_landscape
from lm_failtrace.tracking.promote import AliasStatus, promote, status
from lm_failtrace.tracking.registry import experiment_name, router_name
from lm_failtrace.tracking.uri import resolve_tracking_uri, tracking_client

__all__ = [
    "AliasStatus",
    "LogResult",
    "experiment_name",
    "log_failure_landscape",
    "promote",
    "resolve_tracking_uri",
    "router_name",
    "status",
    "tracking_client",
]
