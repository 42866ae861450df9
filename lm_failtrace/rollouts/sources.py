"""Find and stream the rollouts behind ``failtrace profile``, one record at a time.

Four inputs hold rollout records (the keys of :class:`lm_failtrace.rollouts.RolloutRecord`):

- a **rollout table**: our side-car ``rollouts_<task>_<timestamp>.jsonl|.parquet`` or a generic
  table from another harness or an RL log (JSONL or Parquet), one rollout per line/row;
- an lm-eval **samples log** ``samples_<task>_<timestamp>.jsonl`` of a failtrace task, whose
  per-doc ``failtrace_rollouts`` value lists the doc's rollouts;
- an lm-eval **output directory** (``--output_path DIR``: ``DIR/<model_name>/...``), which is
  resolved to one of the two above per task;
- an Inspect AI **eval log** (``.eval``, ``.json``) or a folder of them, one rollout per
  (sample id, epoch) (:mod:`lm_failtrace.rollouts.inspect_logs`).

Readers yield plain dicts and keep their current position, so the caller can raise an error that
names the file and line (JSONL) or row (Parquet) without the readers knowing what is checked.
Nothing here holds more than one line (or one Parquet record batch) at a time.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_failtrace.errors import InputError
from lm_failtrace.rollouts.inspect_logs import (
    InspectLog,
    ScoreMapping,
    find_logs,
    is_log_name,
    log_rollouts,
    read_log_header,
)
from lm_failtrace.rollouts.row import REQUIRED_KEYS
from lm_failtrace.rollouts.runs import (
    RESULTS_FILE,
    RUN_FILE,
    SAMPLES_KEY,
    find_runs,
    run_model_name,
)

#: File name suffixes read as Parquet.
PARQUET_SUFFIXES = (".parquet", ".pq")

#: Rows per Parquet record batch: bounded memory whatever the file size.
PARQUET_BATCH_ROWS = 65_536

#: The kind of a :class:`Source` that is an Inspect eval log.
INSPECT = "inspect"


@dataclass
class Source:
    """One file to read, with the defaults its records fall back on.

    Args:
        path: the file.
        kind: ``"rollouts"`` (one rollout per line/row), ``"samples"`` (lm-eval samples log) or
            ``"inspect"`` (an Inspect eval log).
        model: model name for records without a ``model`` field (from the run directory).
        task: task name for records without a ``task`` field (from the file name).
        log: an Inspect log's header (kind ``"inspect"``).
        scores: how an Inspect log's scores read (kind ``"inspect"``).
    """

    path: Path
    kind: str
    model: str | None = None
    task: str | None = None
    log: InspectLog | None = None
    scores: ScoreMapping | None = None
    #: 1-based line (JSONL), row (Parquet) or sample (Inspect log) of the record being read.
    position: int = field(default=0, init=False)
    #: 1-based index of the rollout within a samples line's list, else None.
    item: int | None = field(default=None, init=False)
    #: Records that are not rollouts, by kind (``"errored"``: Inspect samples without a score).
    skipped: Counter[str] = field(default_factory=Counter, init=False)

    @property
    def parquet(self) -> bool:
        return self.path.suffix.lower() in PARQUET_SUFFIXES

    def error(self, message: str, column: str | None = None) -> InputError:
        """An :class:`InputError` located at the record being read."""
        if self.item is not None:
            message = f"rollout {self.item} of {SAMPLES_KEY!r}: {message}"
        if self.kind == INSPECT:
            return InputError(f"sample {self.position}: {message}", path=self.path, column=column)
        if self.parquet:
            return InputError(message, path=self.path, row=self.position, column=column)
        return InputError(message, path=self.path, line=self.position, column=column)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Yield rollout records in file order (``position``/``item`` say where each came from)."""
        if self.path.stat().st_size == 0:
            raise InputError("the file is empty", path=self.path)
        if self.log is not None:
            return self._inspect_samples(self.log)
        if self.parquet:
            return self._parquet_rows()
        if self.kind == "samples":
            return self._samples_rollouts()
        return self._json_lines()

    def _json_lines(self) -> Iterator[dict[str, Any]]:
        """Parse one JSON object per non-blank line; a truncated or invalid line is an error.

        Text mode, so ``json.loads`` gets ``str`` and skips its byte-encoding detection.
        """
        try:
            handle = self.path.open(encoding="utf-8")
        except OSError as exc:
            message = f"cannot read the file ({exc.strerror or exc})"
            raise InputError(message, path=self.path) from None
        try:
            with handle as fh:
                for number, raw in enumerate(fh, start=1):
                    self.position = number
                    try:
                        obj = json.loads(raw)
                    except ValueError as exc:
                        if not raw.strip():
                            continue
                        detail = (
                            f"{exc.msg} at character {exc.colno}"
                            if isinstance(exc, json.JSONDecodeError)
                            else str(exc)
                        )
                        raise self.error(f"invalid JSON (a truncated line?): {detail}") from None
                    if type(obj) is not dict:
                        raise self.error(f"expected a JSON object, got {type(obj).__name__}")
                    yield obj
        except UnicodeDecodeError:
            raise self._locate_bad_utf8() from None

    def _locate_bad_utf8(self) -> InputError:
        """The error for the first line that is not UTF-8 (text mode decodes ahead of lines)."""
        with self.path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    self.position, self.item = number, None
                    return self.error(f"not UTF-8 text (byte {exc.start + 1} of the line)")
        return InputError("not UTF-8 text", path=self.path)

    def _samples_rollouts(self) -> Iterator[dict[str, Any]]:
        """Rollouts listed in each samples line's ``failtrace_rollouts`` (first filter only).

        lm-eval logs a doc once per filter; the rollouts are the same generations, so only the
        lines of the first filter seen are read (a second copy would duplicate every rollout).
        """
        first_filter: Any = None
        for obj in self._json_lines():
            self.item = None
            if SAMPLES_KEY not in obj:
                task = self.task or "this task"
                raise self.error(
                    f"no {SAMPLES_KEY!r} in this samples line: {task} is not a failtrace task, "
                    "so its samples log holds only the text of its rollouts. Run a failtrace task "
                    "(failtrace_gsm8k, failtrace_arith) or a `failtrace make-task` variant of it "
                    "with --log_samples",
                    column=SAMPLES_KEY,
                )
            filter_name = obj.get("filter")
            if first_filter is None:
                first_filter = filter_name
            elif filter_name != first_filter:
                continue
            rollouts = obj[SAMPLES_KEY]
            if not isinstance(rollouts, list):
                raise self.error("expected a list of rollout records", column=SAMPLES_KEY)
            for index, record in enumerate(rollouts, start=1):
                self.item = index
                if not isinstance(record, dict):
                    raise self.error(f"expected a JSON object, got {type(record).__name__}")
                yield record
        self.item = None

    def _inspect_samples(self, log: InspectLog) -> Iterator[dict[str, Any]]:
        """Rollouts of an Inspect log, one per scored (sample, epoch), in the log's order."""
        for number, record in enumerate(log_rollouts(log, self.scores, self.skipped), start=1):
            self.position = number
            yield record

    def _parquet_rows(self) -> Iterator[dict[str, Any]]:
        """Rows of a Parquet rollout table, read in record batches (``text`` is never read)."""
        import pyarrow.parquet as pq

        try:
            reader = pq.ParquetFile(self.path)
        except Exception as exc:  # pyarrow raises several types; all mean "not Parquet"
            raise InputError(f"cannot read as Parquet: {exc}", path=self.path) from exc
        names = reader.schema_arrow.names
        required = [*REQUIRED_KEYS, *(["model"] if self.model is None else [])]
        for name in required:
            if name not in names and not (name == "task" and self.task):
                raise InputError(
                    f"missing column (columns present: {', '.join(names)})",
                    path=self.path,
                    column=name,
                )
        columns = [name for name in names if name != "text"]
        row = 0
        for batch in reader.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns):
            for record in batch.to_pylist():
                row += 1
                self.position = row
                yield record


def discover(
    path: str | Path, *, all_runs: bool = False, scores: ScoreMapping | None = None
) -> list[Source]:
    """The files to read for ``failtrace profile PATH``.

    Args:
        path: a rollout table, samples log or Inspect eval log (file), an lm-eval output
            directory (either the ``--output_path`` folder or one ``<model_name>`` folder inside
            it), or a folder of Inspect eval logs.
        all_runs: read every timestamp of each task instead of only the newest (lm-eval).
        scores: which scorer of an Inspect log decides correctness, and how its values read.

    In an lm-eval directory, each (model folder, task) is resolved to its newest run (or every
    run with ``all_runs``); a run is read from its side-car ``rollouts_*`` file when there is one
    (it has seeds, token counts and finish reasons), else from its samples log. In a folder of
    Inspect logs every log is read, each its own (model with settings, task).

    Raises:
        InputError: the path does not exist, is an unknown file type, is a directory with no
            samples logs, side-cars or Inspect logs, or with both lm-eval runs and Inspect logs,
            or with two Inspect logs of one model, settings and task.
    """
    path = Path(path)
    if path.is_file():
        return [_file_source(path, scores)]
    logs = _folder_logs(path)
    if logs:
        return _inspect_sources(path, logs, scores)
    try:
        runs = find_runs(path, all_runs=all_runs)
    except InputError as exc:
        if not path.is_dir():
            raise
        message = f"{exc.message}; nor Inspect eval logs (.eval, .json)"
        raise InputError(message, path=path) from None
    sources = []
    for run in runs:
        kind = "rollouts" if "rollouts" in run.files else "samples"
        sources.append(
            Source(run.files[kind], kind, run_model_name(run.folder, run.timestamp), run.task)
        )
    return sources


def _folder_logs(path: Path) -> list[Path]:
    """The Inspect logs in a folder (none for anything else)."""
    if not path.is_dir():
        return []
    try:
        return find_logs(path, exclude=RESULTS_FILE)
    except OSError as exc:
        raise InputError(f"cannot read the folder ({exc.strerror or exc})", path=path) from None


def inspect_source(path: Path, scores: ScoreMapping | None = None) -> Source:
    """One Inspect log as a source (its header read and checked)."""
    log = read_log_header(path, scores)
    return Source(path, INSPECT, log.name, log.task, log=log, scores=scores)


def _inspect_sources(folder: Path, logs: list[Path], scores: ScoreMapping | None) -> list[Source]:
    """Sources of a folder of Inspect logs: one per log, never two of one model and task.

    Two logs of the same model name and task would pool into one cell (a re-run, or runs that
    differ in a setting the name does not carry, such as the temperature), so they are refused.
    """
    try:
        find_runs(folder)
    except InputError:
        pass
    else:
        raise InputError(
            "holds both lm-eval runs and Inspect logs: give each its own folder", path=folder
        )
    sources = [inspect_source(p, scores) for p in logs]
    seen: dict[tuple[str | None, str | None], Path] = {}
    for source in sources:
        first = seen.setdefault((source.model, source.task), source.path)
        if first != source.path:
            raise InputError(
                f"two logs of model {source.model!r} on task {source.task!r}: {first} and "
                f"{source.path} (a re-run, or settings the model name does not show, such as "
                "the temperature); read one, and the other with `rescue`",
                path=folder,
            )
    return sources


def _file_source(path: Path, scores: ScoreMapping | None = None) -> Source:
    """Classify one file by name: samples log, side-car, Inspect log or generic rollout table."""
    suffix = path.suffix.lower()
    if is_log_name(path) and not RESULTS_FILE.match(path.name):
        return inspect_source(path, scores)
    if suffix not in (".jsonl", *PARQUET_SUFFIXES):
        hint = " (a results JSON holds no rollouts; pass its folder)" if suffix == ".json" else ""
        raise InputError(
            f"unknown file type {suffix or '(no suffix)'!r}: expected an lm-eval output directory, "
            f"a samples/rollouts .jsonl, a rollout table (.jsonl, .parquet) or an Inspect eval "
            f"log (.eval, .json){hint}",
            path=path,
        )
    match = RUN_FILE.match(path.name)
    if match and match.group(1) == "samples":
        if suffix != ".jsonl":
            raise InputError("an lm-eval samples log is JSONL", path=path)
        return Source(path, "samples", run_model_name(path.parent, match["ts"]), match["task"])
    if match:
        return Source(path, "rollouts", run_model_name(path.parent, match["ts"]), match["task"])
    return Source(path, "rollouts")
