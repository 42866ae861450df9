"""Inspect AI eval logs as rollouts: one rollout per (sample id, epoch).

Logs (``.eval`` and ``.json``) are read through Inspect's own reader (:mod:`inspect_ai.log`, the
``[inspect]`` extra): the header alone first (model, task, settings, scorers), then the samples
in batches of :data:`SAMPLE_BATCH`, without their messages, events, store or attachments. An
``.eval`` log is a zip with one member per sample, so memory holds one batch; a ``.json`` log is
one JSON document, which Inspect's reader loads whole (prefer ``.eval``, Inspect's default
format, for large logs).

What a sample becomes (docs/method.md section 9):

- ``correct``: the primary scorer's value: ``C``/``I`` (and ``N``, no answer, as incorrect),
  ``1``/``0`` or true/false; any other value through :class:`ScoreMapping`, else an error.
- ``answer``: the score's ``answer`` (empty = none extracted).
- ``generated_tokens``: ``output_tokens`` of the evaluated model's own usage in the sample
  (``model_usage`` under the log's model name), never a grader's.
- ``finish_reason``: ``length`` when the sample hit its token or context limit or the model
  stopped at ``max_tokens``/``model_length``; ``stop`` for any other known end; else unknown.
- A sample that errored without a score is not a rollout; :func:`log_rollouts` counts it.

The model name carries the run's effort/budget settings (:data:`SETTING_KEYS`), so runs of one
model at several settings are different models and never pool.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lm_failtrace.errors import InputError

#: File suffixes of Inspect eval logs.
LOG_SUFFIXES: tuple[str, ...] = (".eval", ".json")

#: Generation settings that set how much a model may think or write, in the order a model name
#: lists them: a run's model name is ``model@key=value,...`` for those its config sets.
SETTING_KEYS: tuple[str, ...] = ("effort", "reasoning_effort", "reasoning_tokens", "max_tokens")

#: Sample fields never read (transcripts and state): a sample is read without them.
EXCLUDED_FIELDS = frozenset({"messages", "events", "store", "attachments"})

#: Samples read at once: memory holds this many samples (without their transcripts).
SAMPLE_BATCH = 64

#: Inspect's own score values: CORRECT, INCORRECT and NOANSWER (an unanswered sample failed).
SCORE_VALUES: Mapping[str, bool] = {"C": True, "I": False, "N": False}

#: Stop reasons and sample limits that mean the rollout ran out of tokens.
_LENGTH_STOPS = frozenset({"max_tokens", "model_length"})
_LENGTH_LIMITS = frozenset({"token", "context"})

#: Separates the evaluated model from its settings in a model name.
SETTINGS_SEPARATOR = "@"

_INSTALL_HINT = "reading Inspect logs needs inspect_ai: pip install 'lm-failtrace[inspect]'"


@dataclass(frozen=True)
class ScoreMapping:
    """Which scorer decides correctness, and how its values read.

    Args:
        scorer: the scorer's name; ``None`` = the log's primary (first) scorer.
        values: score value (as written: ``"P"``, ``"0.5"``) -> correct, on top of
            :data:`SCORE_VALUES` and the numbers 1/0.
    """

    scorer: str | None = None
    values: Mapping[str, bool] = field(default_factory=dict)

    def correct(self, value: Any) -> bool | None:
        """Whether a score value counts as correct; ``None`` when it has no meaning here."""
        if isinstance(value, (bool, int, float, str)) and str(value) in self.values:
            return self.values[str(value)]
        if isinstance(value, str):
            return SCORE_VALUES.get(value)
        if isinstance(value, bool) or value in (0, 1):
            return bool(value)
        return None


@dataclass(frozen=True)
class InspectLog:
    """What the header of one log says about its rollouts.

    Attributes:
        path: the log file.
        model: the evaluated model as Inspect names it (its key in a sample's usage).
        task: the task name.
        settings: (key, value) of each :data:`SETTING_KEYS` setting the run sets.
        scorer: the scorer whose value decides correctness.
    """

    path: Path
    model: str
    task: str
    settings: tuple[tuple[str, str], ...]
    scorer: str

    @property
    def name(self) -> str:
        """The model name its rollouts carry: ``model@key=value,...`` (settings when any)."""
        if not self.settings:
            return self.model
        return self.model + SETTINGS_SEPARATOR + ",".join(f"{k}={v}" for k, v in self.settings)


def is_log_name(path: Path) -> bool:
    """Whether a file's suffix is an Inspect log's (``.eval``, ``.json``)."""
    return path.suffix.lower() in LOG_SUFFIXES


def find_logs(folder: Path, exclude: re.Pattern[str] | None = None) -> list[Path]:
    """The Inspect logs under ``folder`` (recursively, as Inspect lists them), sorted by path.

    Inspect is imported only when a file could be a log, so an lm-eval folder costs a listing.

    Args:
        exclude: names of ``.json`` files that are known not to be logs (lm-eval's results).
    """
    candidates = [
        p
        for p in folder.rglob("*")
        if is_log_name(p) and p.is_file() and not (exclude and exclude.match(p.name))
    ]
    if not candidates:
        return []
    log_module = _inspect_log_module(folder)
    infos = log_module.list_eval_logs(str(folder), recursive=True, descending=False)
    return sorted(_local_path(info.name, folder) for info in infos)


def _local_path(name: str, folder: Path) -> Path:
    """The path of a listed log (Inspect lists ``file://`` URIs), spelt from ``folder`` as given."""
    path = Path(unquote(urlparse(name).path) if name.startswith("file://") else name)
    try:
        return folder / path.relative_to(folder.resolve())
    except ValueError:
        return path


def _inspect_log_module(path: Path) -> Any:
    try:
        import inspect_ai.log as log_module
    except ImportError:
        raise InputError(_INSTALL_HINT, path=path) from None
    return log_module


def read_log_header(path: Path, mapping: ScoreMapping | None = None) -> InspectLog:
    """The header of one log, checked: readable, finished, scored by the chosen scorer.

    Raises:
        InputError: naming the file: not an Inspect log (or damaged), a run that did not finish,
            a log without scores, or a scorer it does not have.
    """
    log_module = _inspect_log_module(path)
    try:
        header = log_module.read_eval_log(str(path), header_only=True)
    except Exception as exc:  # Inspect raises many types (zip, JSON, validation): all unreadable
        message = f"cannot read as an Inspect eval log ({_reason(exc)})"
        raise InputError(message, path=path) from None
    if header.status != "success":
        raise InputError(
            f"the run's status is {header.status!r}, not 'success': it holds only some samples "
            "(finish it with `inspect eval-retry`)",
            path=path,
        )
    scorers = [score.name for score in (header.results.scores if header.results else [])]
    if not scorers:
        raise InputError(
            "the log has no scores (run without a scorer, or with --no-score): score it first "
            "with `inspect score`",
            path=path,
        )
    scorer = (mapping or ScoreMapping()).scorer or scorers[0]
    if scorer not in scorers:
        raise InputError(
            f"no scorer {scorer!r} in this log (its scorers: {', '.join(dict.fromkeys(scorers))})",
            path=path,
            parameter="scorer",
        )
    config = log_module.effective_generate_config(header).merge(header.plan.config)
    settings = tuple(
        (key, str(getattr(config, key)))
        for key in SETTING_KEYS
        if getattr(config, key, None) is not None
    )
    return InspectLog(path, header.eval.model, header.eval.task, settings, scorer)


def _reason(exc: Exception) -> str:
    """The first line of an exception's message (Inspect's validation errors run long)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def log_rollouts(
    log: InspectLog, mapping: ScoreMapping | None, counts: Counter[str]
) -> Iterator[dict[str, Any]]:
    """Rollout records of one log, in its order (``counts["errored"]`` += samples skipped).

    Raises:
        InputError: naming the file and the sample: a sample without the scorer's score that
            did not error, a score value that is not correct/incorrect, an unreadable sample.
    """
    mapping = mapping or ScoreMapping()
    samples = _samples(_inspect_log_module(log.path), log.path)
    while True:
        try:
            sample = next(samples)
        except StopIteration:
            return
        except InputError:
            raise
        except Exception as exc:  # a damaged member of the zip, an invalid sample
            message = f"cannot read a sample ({_reason(exc)})"
            raise InputError(message, path=log.path) from None
        score = (sample.scores or {}).get(log.scorer)
        if score is None and sample.error is not None:
            counts["errored"] += 1
            continue
        yield _record(log, mapping, sample, score)


def _samples(log_module: Any, path: Path) -> Iterator[Any]:
    """The log's samples in its order (sample ids, then epochs), :data:`SAMPLE_BATCH` at a time.

    ``read_eval_log_samples_by_id`` reads a batch concurrently from one open log, several times
    faster than ``read_eval_log_samples``, which opens the log anew for every sample.
    """
    header = log_module.read_eval_log(str(path), header_only=True)
    ids = header.eval.dataset.sample_ids
    if ids is None:
        raise InputError(
            "the log lists no sample ids (an old format: read and write it again with Inspect)",
            path=path,
        )
    epochs = range(1, (header.eval.config.epochs or 1) + 1)
    keys = [(sample_id, epoch) for sample_id in ids for epoch in epochs]
    for start in range(0, len(keys), SAMPLE_BATCH):
        yield from log_module.read_eval_log_samples_by_id(
            str(path), keys[start : start + SAMPLE_BATCH], exclude_fields=set(EXCLUDED_FIELDS)
        )


def _record(log: InspectLog, mapping: ScoreMapping, sample: Any, score: Any) -> dict[str, Any]:
    """One sample as a rollout record (module docstring)."""
    where = f"sample {sample.id!r}, epoch {sample.epoch}"
    if score is None:
        raise InputError(f"{where}: no score from scorer {log.scorer!r}", path=log.path)
    correct = mapping.correct(score.value)
    if correct is None:
        raise InputError(
            f"{where}: score {score.value!r} of scorer {log.scorer!r} is not correct/incorrect "
            "(C/I, 1/0); say what it means with `score_values` (VALUE=1 or VALUE=0)",
            path=log.path,
            parameter="score_values",
        )
    usage = sample.model_usage.get(log.model)
    return {
        "model": log.name,
        "task": log.task,
        "problem_id": str(sample.id),
        "repeat": sample.epoch - 1,
        "answer": str(score.answer) if score.answer not in (None, "") else None,
        "correct": correct,
        "generated_tokens": None if usage is None else usage.output_tokens,
        "finish_reason": finish_reason(sample),
    }


def finish_reason(sample: Any) -> str | None:
    """``length``, ``stop`` or ``None`` (unknown) for one sample (module docstring)."""
    limit = getattr(sample.limit, "type", None)
    if limit in _LENGTH_LIMITS:
        return "length"
    stop = sample.output.choices[0].stop_reason if sample.output.choices else None
    if stop in _LENGTH_STOPS:
        return "length"
    if limit is not None or stop not in (None, "unknown"):
        return "stop"
    return None
