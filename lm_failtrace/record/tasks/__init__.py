"""Support code for the failtrace lm-eval tasks: answer extraction, full-rollout filter, metrics.

The task YAMLs in ``tasks/`` (package ``lm_failtrace_tasks``) reference these names with
``!function lm_failtrace.record.tasks.<name>``; ``failtrace make-task`` writes YAMLs that do too.
"""

from lm_failtrace.record.tasks._answers import NO_MATCH, NumericAnswer, extract_number
from lm_failtrace.record.tasks._data import arith_data_path, load_arith, tasks_dir
from lm_failtrace.record.tasks._metrics import PASS_AT_K, aggregate, failtrace, score_rollouts
from lm_failtrace.record.tasks._record import ExtractedAnswer, RecordRollouts, problem_id
from lm_failtrace.record.tasks._scorer import TaskScorer

__all__ = [
    "NO_MATCH",
    "PASS_AT_K",
    "ExtractedAnswer",
    "NumericAnswer",
    "RecordRollouts",
    "TaskScorer",
    "aggregate",
    "arith_data_path",
    "extract_number",
    "failtrace",
    "load_arith",
    "problem_id",
    "score_rollouts",
    "tasks_dir",
]
