"""Recording: lm-eval task support and model backends that keep every rollout.

:func:`run_eval` is ``failtrace eval`` as a library call; it imports lm-eval only when called.
"""

from lm_failtrace.record.evaluate import EvalResult, run_eval

__all__ = ["EvalResult", "run_eval"]
