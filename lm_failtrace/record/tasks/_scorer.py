"""Score new completions of a recorded doc exactly as its failtrace task scored the recording.

Repair generates fresh attempts after lm-eval has finished; they must be judged by the same
answer extraction and the same ``exact_match`` options as the rollouts they try to rescue, so
this reads both from the task's own configuration instead of re-implementing either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lm_failtrace.errors import InputError
from lm_failtrace.record.tasks._data import tasks_dir
from lm_failtrace.record.tasks._metrics import failtrace, score_rollouts
from lm_failtrace.record.tasks._record import RecordRollouts

_METRIC_KEYS = ("metric", "aggregation", "higher_is_better")


class TaskScorer:
    """Judge completions with a failtrace task's recording filter and metric options.

    Args:
        task: the task name (a failtrace task or a ``make-task`` variant).
        include_path: folders of task YAMLs besides the bundled ones (for ``make-task`` output).
    """

    def __init__(self, task: str, include_path: Sequence[str | Path] = ()) -> None:
        from lm_eval.tasks import TaskManager

        paths = [str(tasks_dir()), *(str(p) for p in include_path)]
        manager = TaskManager(include_path=paths, include_defaults=False)
        if task not in manager.all_tasks:
            raise InputError(
                f"unknown task {task!r} (looked in {', '.join(paths)}); pass the folder of its "
                "YAML with --include-path",
                column="task",
            )
        config = manager.load([task])["tasks"][task].config
        self.task = task
        self._recorder = _recorder(task, config.filter_list or [])
        self._match_kwargs = _match_kwargs(task, config.metric_list or [])

    def correct(self, doc: Mapping[str, Any], target: str, texts: Sequence[str]) -> list[bool]:
        """Whether each completion of ``doc`` is correct (answer extracted and matched)."""
        (answers,) = self._recorder.apply([list(texts)], [doc])
        records = score_rollouts(target, answers, **self._match_kwargs)["failtrace_rollouts"]
        return [bool(r["correct"]) for r in records]


def _recorder(task: str, filter_list: Sequence[Mapping[str, Any]]) -> RecordRollouts:
    for entry in filter_list:
        steps = entry.get("filter") or []
        if steps and steps[0].get("function") is RecordRollouts:
            return RecordRollouts(**{k: v for k, v in steps[0].items() if k != "function"})
    raise InputError(
        f"task {task!r} does not record rollouts (no RecordRollouts filter): use a failtrace task "
        "or a `failtrace make-task` variant",
        column="task",
    )


def _match_kwargs(task: str, metric_list: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    for entry in metric_list:
        if entry.get("metric") is failtrace:
            return {k: v for k, v in entry.items() if k not in _METRIC_KEYS}
    raise InputError(f"task {task!r} has no failtrace metric", column="task")
