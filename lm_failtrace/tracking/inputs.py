"""What ``failtrace log`` logs from: a profile table, the lm-eval settings, and a content hash.

The input is either a profile table file (CSV/Parquet) or an lm-eval run directory, which is turned
into profiles by :mod:`lm_failtrace.profiles.build` and whose ``results_*.json`` also supplies the
run's configuration (params) and its pass@k (not recoverable from profiles: fully solved problems
have no profile row).

Same input = same :func:`content_hash`: sha256 over the profile table's canonical CSV bytes, the
analysis configuration and the code version. It is stored as a tag on the runs, the router
version and the model version, which is how a re-run is recognised and not logged twice.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lm_failtrace import __version__
from lm_failtrace.errors import InputError
from lm_failtrace.profiles import (
    ProfileData,
    ProfileSchema,
    ProfileTable,
    as_profile_table,
    validate_profiles,
)
from lm_failtrace.record.secrets import redact


def code_version() -> str:
    """``lm-failtrace <version>`` plus the git commit when running from a checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+g{commit}" if commit else __version__


@dataclass
class LandscapeInput:
    """A profile table with what we know about how it was produced.

    Attributes:
        table: the validated profiles (already filtered to the selected tasks).
        source: the path given by the user.
        lm_eval_config: lm-eval's run configuration (redacted; ``device``/``dtype`` as the
            backend reported them, see :func:`backend_settings`), empty for a profile file.
        pass_at_k: task -> {metric: value} from lm-eval's results (pass@k, maj@k), if known.
    """

    table: ProfileTable
    source: str
    lm_eval_config: dict[str, Any] = field(default_factory=dict)
    pass_at_k: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def tasks(self) -> list[str]:
        return list(dict.fromkeys(self.table.frame["task"]))


def _latest_results(run_dir: Path) -> list[dict[str, Any]]:
    """Every model folder's newest ``results_*.json`` under an lm-eval ``--output_path``."""
    newest: dict[Path, Path] = {}
    for path in sorted(run_dir.rglob("results_*.json")):
        newest[path.parent] = path  # timestamps sort lexically
    docs = []
    for path in newest.values():
        try:
            docs.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read lm-eval results: {exc}", path=path) from exc
    return docs


def _pass_at_k(results: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for task, metrics in (results.get("results") or {}).items():
        for key, value in metrics.items():
            name = str(key).split(",")[0]
            if re.fullmatch(r"(pass@\d+|maj@\d+)", name) and isinstance(value, (int, float)):
                out.setdefault(task, {})[name] = float(value)
    return out


#: Keys of lm-eval's results ``config`` under which a backend reports what it ran on (its
#: ``get_model_info``; ``failtrace-hf`` fills both, lm-eval's ``hf`` the dtype).
BACKEND_DEVICE_KEY = "model_device"
BACKEND_DTYPE_KEY = "model_dtype"


def backend_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """lm-eval's configuration with ``device`` and ``dtype`` as the backend reported them.

    lm-eval writes ``device`` from its own ``--device`` argument (``cuda:0`` by default, also for
    a CPU run), not from what the backend used: it is dropped. ``device``/``dtype`` come from
    :data:`BACKEND_DEVICE_KEY`/:data:`BACKEND_DTYPE_KEY` (``torch.`` prefix dropped) and are
    left out when the backend did not report them, rather than guessed.
    """
    reported = (BACKEND_DEVICE_KEY, BACKEND_DTYPE_KEY)
    out = {k: v for k, v in config.items() if k not in ("device", *reported)}
    device, dtype = config.get(BACKEND_DEVICE_KEY), config.get(BACKEND_DTYPE_KEY)
    if device:
        out["device"] = str(device)
    if dtype:
        out["dtype"] = str(dtype).removeprefix("torch.")
    return out


def _run_settings(run_dir: Path) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """lm-eval's configuration (redacted) and pass@k/maj@k per task, from a run directory."""
    config: dict[str, Any] = {}
    pass_k: dict[str, dict[str, float]] = {}
    for doc in _latest_results(run_dir):
        config.update(redact(doc.get("config") or {}))
        pass_k.update(_pass_at_k(doc))
    return backend_settings(config), pass_k


def _from_run_dir(path: Path, schema: ProfileSchema) -> ProfileTable:
    """The run's profiles, which must hold the requested (else: some) rescue-rate columns."""
    from lm_failtrace.profiles.build import build_profiles

    built = build_profiles(path)
    schema = schema.resolved(built.schema)
    missing = [op for op in schema.operators or () if op not in built.frame.columns]
    if missing or not schema.operators:
        raise InputError(
            f"the run has no rescue rates ({', '.join(missing) or 'no operator columns'}): "
            f"regimes and the router need them. Measure them with `failtrace repair {path}` and "
            f"log the profile table it writes, with `lm_eval_run` {path} to keep the run's "
            "settings and pass@k",
            path=path,
        )
    return validate_profiles(built.frame, schema, source=path)


def _select(
    table: ProfileTable, column: str, wanted: tuple[str, ...], parameter: str
) -> ProfileTable:
    if not wanted:
        return table
    present = set(table.frame[column])
    missing = [w for w in wanted if w not in present]
    if missing:
        raise InputError(
            f"no {column} {', '.join(missing)} in the input (it has {', '.join(sorted(present))})",
            path=table.source,
            parameter=parameter,
        )
    frame = table.frame.loc[table.frame[column].isin(wanted)].reset_index(drop=True)
    return ProfileTable(frame, table.schema, table.source)


def load_input(
    source: ProfileData,
    schema: ProfileSchema,
    *,
    tasks: tuple[str, ...] = (),
    cells: tuple[str, ...] = (),
    lm_eval_run: str | Path | None = None,
) -> LandscapeInput:
    """A profile table as given (in memory or a file), or built from an lm-eval run directory.

    Args:
        source: a :class:`ProfileTable` or DataFrame, a ``.csv``/``.parquet`` profile table, or
            an lm-eval ``--output_path`` folder whose rollouts carry rescue rates.
        schema: feature and operator columns of the analysis (``None`` parts: the input's own).
        tasks: keep only these tasks (all when empty); ``cells``: likewise for cells.
        lm_eval_run: the lm-eval run a profile table came from (its settings and pass@k are
            logged); defaults to ``source`` when that is a run directory.

    Raises:
        InputError: unreadable input, a run without rescue rates, a requested task or cell that
            the input does not hold, or a table with several models.
    """
    run_folder = isinstance(source, (str, Path)) and Path(source).is_dir()
    table = _from_run_dir(Path(source), schema) if run_folder else as_profile_table(source, schema)
    table = _select(_select(table, "task", tasks, "tasks"), "cell", cells, "cells")
    models = list(dict.fromkeys(table.frame["model"]))
    if len(models) > 1:
        raise InputError(
            f"the input holds several models ({', '.join(models)}); one registered model version "
            "is one model: choose its cells with `cells`",
            path=table.source,
            column="model",
        )
    run_dir = Path(lm_eval_run) if lm_eval_run else (Path(source) if run_folder else None)
    config, pass_k = _run_settings(run_dir) if run_dir else ({}, {})
    return LandscapeInput(table, table.source if not run_folder else str(source), config, pass_k)


def content_hash(table: ProfileTable, analysis_config: Any, version: str) -> str:
    """sha256 of the profile table (canonical CSV), the analysis configuration and code version."""
    digest = hashlib.sha256()
    digest.update(table.frame.to_csv(index=False, float_format="%.17g").encode())
    settings = asdict(analysis_config) if hasattr(analysis_config, "__dataclass_fields__") else {}
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    digest.update(version.encode())
    return digest.hexdigest()
