"""Repair: apply test-time operators to failure units and measure rescue rates.

Public API: :func:`repair_run` (a recorded lm-eval run -> per-unit rescue rates and tokens per
trial of every operator) with its :class:`RepairConfig`; the operators themselves are registered
in :data:`OPERATORS`. Importing this package does not import torch; applying an operator does.
"""

from lm_failtrace.repair.operators import OPERATORS
from lm_failtrace.repair.runner import DEFAULT_OPERATORS, RepairConfig, repair_run

__all__ = ["DEFAULT_OPERATORS", "OPERATORS", "RepairConfig", "repair_run"]
