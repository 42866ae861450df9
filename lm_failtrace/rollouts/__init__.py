"""Rollouts: the row every stage shares, where lm-eval keeps it, and what a unit's rollouts say.

The lowest layer of the pipeline (record -> profiles -> repair -> analysis -> report/tracking):

- the rollout row (:class:`RolloutRecord`), the one data type recording emits;
- the lm-eval run folder (:func:`find_runs`, :class:`Run`, samples/side-car/results files,
  :func:`recorded_model_args`), written by recording and read by profiles, repair and tracking;
- streaming readers of every input that holds rollouts (:func:`discover`, :class:`Source`),
  Inspect AI eval logs among them (:class:`InspectLog`, :class:`ScoreMapping`);
- the statistics of one unit's rollouts (:func:`pass_at_k`, :func:`outcome_features`), shared by
  the lm-eval task's per-doc metrics and the profile table so the two can never disagree.
"""

from lm_failtrace.rollouts.inspect_logs import (
    SETTING_KEYS,
    SETTINGS_SEPARATOR,
    InspectLog,
    ScoreMapping,
)
from lm_failtrace.rollouts.outcome import (
    FAILURE_COLUMNS,
    NO_ANSWER,
    UNIT_COLUMNS,
    OutcomeTally,
    outcome_features,
    pass_at_k,
)
from lm_failtrace.rollouts.row import FINISH_REASONS, REQUIRED_KEYS, RolloutRecord
from lm_failtrace.rollouts.runs import (
    SAMPLES_KEY,
    Run,
    check_lm_eval_run,
    find_runs,
    input_paths,
    is_run_file_name,
    output_folder,
    recorded_model_args,
    results_files,
    run_model_name,
    samples_files,
    short_model_name,
    sidecar_path,
)
from lm_failtrace.rollouts.sources import INSPECT, Source, discover

__all__ = [
    "FAILURE_COLUMNS",
    "FINISH_REASONS",
    "INSPECT",
    "NO_ANSWER",
    "REQUIRED_KEYS",
    "SAMPLES_KEY",
    "SETTINGS_SEPARATOR",
    "SETTING_KEYS",
    "UNIT_COLUMNS",
    "InspectLog",
    "OutcomeTally",
    "RolloutRecord",
    "Run",
    "ScoreMapping",
    "Source",
    "check_lm_eval_run",
    "discover",
    "find_runs",
    "input_paths",
    "is_run_file_name",
    "outcome_features",
    "output_folder",
    "pass_at_k",
    "recorded_model_args",
    "results_files",
    "run_model_name",
    "samples_files",
    "short_model_name",
    "sidecar_path",
]
