"""The lm-eval run folder: where a run's samples log, side-car and results JSON live.

lm-eval writes, under ``--output_path DIR``, one ``DIR/<model_name>/`` folder per model with
``samples_<task>_<ts>.jsonl`` (with ``--log_samples``) and ``results_<ts>.json`` per run; our
recording adds the side-car ``rollouts_<task>_<ts>.jsonl`` beside each samples log. Recording
writes this layout, and profiles, repair and tracking read it: this module is the one place that
knows it, so the stages above never parse lm-eval's file names themselves.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_failtrace.errors import InputError

#: The samples-log key under which failtrace tasks list a doc's rollouts.
SAMPLES_KEY = "failtrace_rollouts"

#: lm-eval's output files: ``<kind>_<task>_<timestamp>.<ext>``; the timestamp
#: (``datetime.isoformat()`` with ``:`` replaced by ``-``) has no underscore, so the task is
#: everything between the first and the last underscore.
RUN_FILE = re.compile(r"^(samples|rollouts)_(?P<task>.+)_(?P<ts>[^_]+)\.(?P<ext>jsonl|parquet|pq)$")


#: lm-eval's results file of one run: ``results_<timestamp>.json``.
RESULTS_FILE = re.compile(r"^results_(?P<ts>[^_]+)\.json$")


#: Model-argument keys lm-eval itself derives a model name from, in its order of preference.
_MODEL_ARG_KEYS = ("peft", "delta", "pretrained", "model", "path", "engine")


#: File name prefixes of lm-eval's samples log and of our side-car rollout table.
SAMPLES_PREFIX = "samples_"
SIDECAR_PREFIX = "rollouts_"


def output_folder(output_path: str | Path) -> Path:
    """The folder lm-eval writes into for ``--output_path``: a ``.json`` path means its folder."""
    root = Path(output_path)
    return root.parent if root.suffix == ".json" else root


def samples_files(output_path: str | Path) -> dict[Path, int]:
    """Every samples log under lm-eval's ``--output_path`` with its modification time (ns)."""
    root = output_folder(output_path)
    if not root.is_dir():
        return {}
    return {p: p.stat().st_mtime_ns for p in root.rglob(f"{SAMPLES_PREFIX}*.jsonl")}


def sidecar_path(samples: Path) -> Path:
    """``.../samples_<task>_<ts>.jsonl`` -> ``.../rollouts_<task>_<ts>.jsonl``."""
    return samples.with_name(SIDECAR_PREFIX + samples.name[len(SAMPLES_PREFIX) :])


@dataclass(frozen=True)
class Run:
    """One lm-eval run of one task in one ``<model_name>`` folder.

    Attributes:
        folder: the ``<model_name>`` folder.
        task: the task name.
        timestamp: lm-eval's file timestamp.
        files: ``"samples"`` and/or ``"rollouts"`` -> path.
    """

    folder: Path
    task: str
    timestamp: str
    files: dict[str, Path]

    @property
    def results(self) -> Path:
        """lm-eval's ``results_<timestamp>.json`` of this run (may be absent)."""
        return self.folder / f"results_{self.timestamp}.json"


def find_runs(path: str | Path, *, all_runs: bool = False) -> list[Run]:
    """The runs in an lm-eval output directory, newest per (model folder, task) by default.

    Raises:
        InputError: the directory does not exist or holds no samples logs or side-cars.
    """
    path = Path(path)
    if not path.is_dir():
        raise InputError("no such file or directory", path=path)
    model_dirs = [path] if _run_files(path) else sorted(d for d in path.iterdir() if d.is_dir())
    runs = [run for d in model_dirs for run in _folder_runs(d, all_runs)]
    if not runs:
        raise InputError(
            "no lm-eval samples here: expected samples_<task>_<timestamp>.jsonl (written by "
            "lm-eval with --log_samples --output_path) or rollouts_<task>_<timestamp>.jsonl, in "
            "this directory or in its <model_name> folders",
            path=path,
        )
    return runs


def results_files(path: str | Path) -> list[Path]:
    """lm-eval's ``results_<timestamp>.json`` files in ``path`` or its ``<model_name>`` folders."""
    path = Path(path)
    if not path.is_dir():
        return []
    folders = [path, *sorted(d for d in path.iterdir() if d.is_dir())]
    return [p for d in folders for p in sorted(d.iterdir()) if RESULTS_FILE.match(p.name)]


def check_lm_eval_run(path: str | Path, parameter: str = "lm_eval_run") -> list[Path]:
    """The results files of an lm-eval run folder; an :class:`InputError` if it is not one.

    An lm-eval run folder (``--output_path DIR``, or one ``DIR/<model_name>``) holds at least one
    ``results_<timestamp>.json``, each a JSON object with lm-eval's ``config`` and ``results``.
    Any other folder would be read as a run without settings or pass@k, silently.
    """
    path = Path(path)
    if not path.is_dir():
        raise InputError("no such folder", path=path, parameter=parameter)
    try:
        found = results_files(path)
    except OSError as exc:
        message = f"cannot read the folder ({exc})"
        raise InputError(message, path=path, parameter=parameter) from None
    if not found:
        raise InputError(
            "not an lm-eval run folder: no results_<timestamp>.json in it or in its <model_name> "
            "folders (lm-eval writes them under --output_path)",
            path=path,
            parameter=parameter,
        )
    for results in found:
        try:
            doc = json.loads(results.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"not lm-eval's results JSON: {exc}", path=results) from None
        if not isinstance(doc, dict) or not {"config", "results"} <= doc.keys():
            raise InputError(
                "not lm-eval's results JSON (an object with 'config' and 'results')",
                path=results,
            )
    return found


def input_paths(path: str | Path) -> list[Path]:
    """What reading ``path`` depends on: the path, and for a run file its results JSON.

    A samples log or side-car is read with ``results_<timestamp>.json`` beside it (the model
    name), so an output must not replace that file either.
    """
    path = Path(path)
    match = RUN_FILE.match(path.name)
    if match is None:
        return [path]
    return [path, path.with_name(f"results_{match['ts']}.json")]


def is_run_file_name(name: str) -> bool:
    """Whether a file of this name would be read as part of an lm-eval run (:func:`find_runs`)."""
    return bool(RUN_FILE.match(name) or RESULTS_FILE.match(name))


def _run_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file() and RUN_FILE.match(p.name)]


def _folder_runs(folder: Path, all_runs: bool) -> list[Run]:
    """The chosen runs of each task in one ``<model_name>`` folder."""
    runs: dict[str, dict[str, dict[str, Path]]] = {}  # task -> timestamp -> kind -> path
    for p in _run_files(folder):
        match = RUN_FILE.match(p.name)
        assert match is not None
        kinds = runs.setdefault(match["task"], {}).setdefault(match["ts"], {})
        if match[1] == "samples" and match["ext"] != "jsonl":
            continue
        kinds[match[1]] = p
    chosen = []
    for task in sorted(runs):
        stamps = sorted(runs[task])  # ISO timestamps sort chronologically
        for ts in stamps if all_runs else stamps[-1:]:
            if runs[task][ts]:
                chosen.append(Run(folder, task, ts, runs[task][ts]))
    return chosen


def short_model_name(value: str) -> str:
    """A model's short, stable name: a local path becomes its final folder name.

    The name becomes cells (``model|task``), MLflow run names, figure files and report rows; an
    absolute checkpoint path there would differ from machine to machine and bury the one part a
    reader needs. A value is a local path when it is absolute, starts with ``.`` or ``~``, ends
    with ``/``, or names an existing directory; anything else, such as a Hugging Face hub id
    (``Qwen/Qwen3-0.6B``), is kept as it is.
    """
    local = value.startswith((".", "~")) or value.endswith("/") or Path(value).is_absolute()
    if not (local or Path(value).is_dir()):
        return value
    path = Path(value.rstrip("/") or value)
    if path.name in ("", ".", ".."):  # "/", ".", "../": the folder the path resolves to
        path = path.resolve()
    return path.name or value


def run_model_name(folder: Path, ts: str) -> str:
    """The model a run folder holds: ``results_<ts>.json``'s model name, else the folder name.

    Names from the results JSON (lm-eval's ``model_name``, else the model argument it derives
    one from) are shortened by :func:`short_model_name`: a checkpoint path gives its folder name.
    """
    results = folder / f"results_{ts}.json"
    if results.is_file():
        try:
            doc = json.loads(results.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InputError(f"invalid JSON: {exc}", path=results) from None
        name = doc.get("model_name") if isinstance(doc, dict) else None
        if isinstance(name, str) and name:
            return short_model_name(name)
        args = (doc.get("config") or {}).get("model_args") if isinstance(doc, dict) else None
        found = _name_from_model_args(args)
        if found:
            return short_model_name(found)
    return folder.name


def _name_from_model_args(args: Any) -> str | None:
    """lm-eval's own rule: the first of peft/delta/pretrained/model/path/engine present.

    Only that one value is read, so secrets among the model arguments never reach our output.
    """
    pairs = recorded_model_args(args)
    for key in _MODEL_ARG_KEYS:
        if pairs.get(key):
            return str(pairs[key])
    return None


def recorded_model_args(args: Any) -> dict[str, Any]:
    """The model arguments lm-eval recorded in a results JSON: a dict, or its ``k=v,k=v`` string.

    Parts without ``=`` are skipped (this reads what lm-eval wrote; it does not validate it).
    """
    if isinstance(args, dict):
        return dict(args)
    if isinstance(args, str):
        return dict(part.split("=", 1) for part in args.split(",") if "=" in part)
    return {}
