"""``failtrace make-task``: a failtrace variant of an existing lm-eval ``generate_until`` task.

The variant ``include:``\\ s the base task's YAML (so data, prompt, few-shot setup and target are
the base task's own, read by lm-eval) and overrides only what recording needs: ``repeats``,
sampling settings, a filter that keeps all N repeats while running the base task's own
answer-extraction steps on each, and the failtrace metric, which scores each answer with the
base task's ``exact_match`` options. Tasks we cannot reproduce faithfully are refused: other
output types, custom ``process_results``, no ``exact_match``, or filters that merge repeats.

The variant refers to the base YAML by absolute path: regenerate it after moving or upgrading
lm-eval.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from pathlib import Path
from typing import Any

import yaml

from lm_failtrace.errors import InputError
from lm_failtrace.outputs import atomic_output, check_outputs

#: Filter steps that select or merge repeats; the variant scores every repeat instead.
_REPEAT_STEPS = ("take_first", "take_first_k", "majority_vote")
#: Metric-config keys that are not ``exact_match`` options.
_METRIC_META_KEYS = ("metric", "aggregation", "higher_is_better", "hf_evaluate")
#: lm-eval's default ``max_gen_toks`` for generation, written out when the base task states none.
DEFAULT_MAX_GEN_TOKS = 256
#: A task name: what lm-eval's ``--tasks`` takes and a file name can hold, never a path.
TASK_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class FunctionRef(str):
    """A value written as ``!function <ref>`` (an importable name or an absolute module path)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    FunctionRef, lambda dumper, ref: dumper.represent_scalar("!function", str(ref))
)


def _ours(name: str) -> FunctionRef:
    return FunctionRef(f"lm_failtrace.record.tasks.{name}")


@functools.lru_cache(maxsize=1)
def builtin_tasks() -> Any:
    """lm-eval's index of its built-in tasks (built once per process: it takes seconds)."""
    from lm_eval.tasks import TaskManager

    return TaskManager()


def check_task_name(name: str) -> str:
    """``name`` if it is a task name (letters, digits, ``_``, ``-``, ``.``); never a path."""
    if not TASK_NAME.fullmatch(name):
        raise InputError(
            f"{name!r} is not a task name: use letters, digits, '_', '-' and '.', starting with "
            "a letter, digit or '_' (the file is <name>.yaml in `out_dir`)",
            parameter="name",
        )
    return name


def _check_not_taken(name: str, manager: Any) -> None:
    """Refuse a name lm-eval or failtrace already gives a task, group or tag."""
    from lm_failtrace.record.tasks import tasks_dir

    ours = {path.stem for path in tasks_dir().glob("*/*.yaml")}
    if name in manager.task_index or name in ours:
        raise InputError(
            f"{name!r} is already a task of {'failtrace' if name in ours else 'lm-eval'}: the "
            "variant would shadow it. Choose another `name`, or pass `force` to write it anyway",
            parameter="name",
        )


def find_base_task(name: str, task_manager: Any = None) -> tuple[Path, dict[str, Any]]:
    """The YAML path and raw merged config (``!function`` values as absolute paths) of a task.

    Args:
        name: an lm-eval task name.
        task_manager: an ``lm_eval.tasks.TaskManager`` (default: built-in tasks only).
    """
    from lm_eval.tasks._index import Kind
    from lm_eval.tasks._yaml_loader import load_yaml

    manager = task_manager if task_manager is not None else builtin_tasks()
    entry = manager.task_index.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, manager.all_tasks, n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise InputError(f"unknown lm-eval task {name!r}{hint}", column="BASE_TASK")
    if entry.kind in (Kind.GROUP, Kind.TAG):
        raise InputError(
            f"{name!r} is an lm-eval group or tag, not one task; name one of its tasks",
            column="BASE_TASK",
        )
    if entry.kind is not Kind.TASK or entry.yaml_path is None:
        raise InputError(
            f"{name!r} is defined by a Python class; only YAML tasks can be varied",
            column="BASE_TASK",
        )
    raw = load_yaml(entry.yaml_path, resolve_func=False)
    if "class" in raw:
        raise InputError(
            f"{name!r} is defined by a Python class; only YAML tasks can be varied",
            column="BASE_TASK",
        )
    return Path(entry.yaml_path), raw


def _exact_match_options(name: str, raw: dict[str, Any]) -> dict[str, Any]:
    if raw.get("process_results") is not None:
        raise InputError(
            f"{name!r} scores with its own process_results; failtrace can only reproduce "
            "tasks scored by exact_match after filters",
            column="BASE_TASK",
        )
    metrics = raw.get("metric_list")
    if metrics is None:  # lm-eval's default metric for generate_until
        return {}
    for config in metrics:
        if config.get("metric") == "exact_match":
            return {k: v for k, v in config.items() if k not in _METRIC_META_KEYS}
    found = ", ".join(str(config.get("metric")) for config in metrics)
    raise InputError(
        f"{name!r} is not scored by exact_match (metrics: {found})", column="BASE_TASK"
    )


def _extraction_steps(name: str, ensemble: dict[str, Any]) -> list[dict[str, Any]]:
    """The ensemble's steps minus its final ``take_first``, function paths as ``!function``."""
    import lm_eval.filters  # noqa: F401  (registers the built-in filters)
    from lm_eval.api.registry import filter_registry

    steps = [dict(step) for step in ensemble.get("filter", [])]
    if steps and steps[-1].get("function") == "take_first":
        steps.pop()
    for step in steps:
        function = step.get("function")
        if function in _REPEAT_STEPS:
            raise InputError(
                f"{name!r}: filter {ensemble.get('name')!r} uses {function}, which selects or "
                "merges repeats; failtrace scores every repeat and cannot reproduce it",
                column="BASE_TASK",
            )
        if isinstance(function, str) and function not in filter_registry:
            step["function"] = FunctionRef(function)  # a !function path in the base YAML
    return steps


def variant_config(
    base: str,
    yaml_path: Path,
    raw: dict[str, Any],
    *,
    name: str,
    repeats: int,
    temperature: float,
    max_gen_toks: int | None,
    id_field: str | None = None,
) -> dict[str, Any]:
    """The variant's YAML document (see the module docstring)."""
    output_type = raw.get("output_type", "generate_until")
    if output_type != "generate_until":
        raise InputError(
            f"{base!r} is a {output_type} task; failtrace needs generate_until",
            column="BASE_TASK",
        )
    match_options = _exact_match_options(base, raw)
    ensembles = raw.get("filter_list") or [{"name": "none", "filter": []}]
    generation = dict(raw.get("generation_kwargs") or {})
    generation.update(
        do_sample=temperature > 0,
        temperature=temperature,
        max_gen_toks=max_gen_toks or generation.get("max_gen_toks") or DEFAULT_MAX_GEN_TOKS,
    )
    record_kwargs: dict[str, Any] = {"task": name, "id_prefix": base}
    if id_field is not None:
        record_kwargs["id_field"] = id_field
    return {
        "include": str(yaml_path),
        "task": name,
        "tag": ["failtrace"],
        "repeats": repeats,
        "generation_kwargs": generation,
        "filter_list": [
            {
                "name": ensemble["name"],
                "filter": [
                    {
                        "function": _ours("RecordRollouts"),
                        **record_kwargs,
                        "steps": _extraction_steps(base, ensemble),
                    }
                ],
            }
            for ensemble in ensembles
        ],
        "metric_list": [
            {
                "metric": _ours("failtrace"),
                "aggregation": _ours("aggregate"),
                "higher_is_better": True,
                **match_options,
            }
        ],
    }


def _check_loads(path: Path) -> None:
    """Parse the written YAML the way lm-eval will, resolving every ``!function``."""
    from lm_eval.config.task import TaskConfig
    from lm_eval.tasks._yaml_loader import load_yaml

    config = load_yaml(path, resolve_func=True)
    for key in ("tag", "group", "task_list"):
        config.pop(key, None)
    TaskConfig(**config)


def _check_settings(repeats: int, temperature: float, max_gen_toks: int | None) -> None:
    """Generation settings are finite numbers in range (NaN would pass every comparison)."""
    if repeats < 1:
        raise InputError("repeats must be at least 1", parameter="repeats")
    if not math.isfinite(temperature) or temperature < 0:
        raise InputError(
            f"temperature must be a finite number >= 0, got {temperature}", parameter="temperature"
        )
    if max_gen_toks is not None and max_gen_toks < 1:
        raise InputError("max_gen_toks must be at least 1", parameter="max_gen_toks")


def write_variant(
    base: str,
    out_dir: str | Path,
    *,
    name: str | None = None,
    repeats: int = 16,
    temperature: float = 0.6,
    max_gen_toks: int | None = None,
    id_field: str | None = None,
    task_manager: Any = None,
    force: bool = False,
) -> Path:
    """Write ``<out_dir>/<name>.yaml`` (default name ``<base>_failtrace``); returns its path.

    The file appears only once it parses as an lm-eval task config (no half-written output); an
    existing file of that name is replaced only then.

    Args:
        force: write a ``name`` that lm-eval (or failtrace) already gives a task, shadowing it.

    Raises:
        InputError: a setting out of range or not finite; ``name`` is not a task name (it is
            never a path) or, without ``force``, an existing task's; the output would go inside
            the base task's own folder; the base task cannot be varied faithfully.
    """
    _check_settings(repeats, temperature, max_gen_toks)
    if name is not None:
        check_task_name(name)
        check_outputs([("out_dir", Path(out_dir) / f"{name}.yaml")], [])
    manager = task_manager if task_manager is not None else builtin_tasks()
    yaml_path, raw = find_base_task(base, manager)
    name = check_task_name(name or f"{base}_failtrace")
    if not force:
        _check_not_taken(name, manager)
    target = Path(out_dir) / f"{name}.yaml"
    check_outputs([("out_dir", target)], [yaml_path.parent])
    document = variant_config(
        base,
        yaml_path,
        raw,
        name=name,
        repeats=repeats,
        temperature=temperature,
        max_gen_toks=max_gen_toks,
        id_field=id_field,
    )
    header = (
        f"# failtrace variant of lm-eval task {base!r}, written by `failtrace make-task`.\n"
        "# Same data, prompt, filters and exact_match scoring as the included base task; every\n"
        "# repeat is scored and recorded (pass@k, maj@N, outcome features, failtrace_rollouts).\n"
    )
    with atomic_output(target, parameter="out_dir") as tmp:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(header)
            yaml.dump(document, fh, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
        _check_loads(tmp)
    return target
