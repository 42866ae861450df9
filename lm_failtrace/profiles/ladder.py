"""A ladder: Inspect logs of one model at several settings of one knob, read in one go.

``failtrace profile LOG_DIR --ladder``: the logs' settings (:data:`SETTING_KEYS`: effort,
reasoning effort, thinking budget, token limit) must differ in exactly one knob; the logs at its
lowest value are BASE, and the logs at each higher value become one rescue column named by the
setting, ``<knob>_<value>`` (``reasoning_effort_high``, ``reasoning_tokens_8192``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lm_failtrace.errors import InputError
from lm_failtrace.rollouts import SETTING_KEYS, Source

#: Effort values from least to most (Inspect's ``effort`` and ``reasoning_effort``).
EFFORT_ORDER: tuple[str, ...] = ("none", "minimal", "low", "medium", "high", "xhigh", "max")

#: Knobs whose values are token counts (ordered as numbers).
_NUMERIC = frozenset({"reasoning_tokens", "max_tokens"})

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True)
class Ladder:
    """One model's logs split by the knob they differ in.

    Attributes:
        knob: the setting that varies.
        base: the logs at its lowest value.
        rungs: (rescue column name, logs) of each higher value, in increasing order.
    """

    knob: str
    base: list[Source]
    rungs: list[tuple[str, list[Source]]]


def rung_name(knob: str, value: str) -> str:
    """The rescue column of a setting: ``<knob>_<value>``, non-identifier characters as ``_``."""
    return _UNSAFE.sub("_", f"{knob}_{value}")


def split_ladder(sources: list[Source], folder: Path) -> Ladder:
    """BASE (lowest setting) and one rung per higher setting of ``sources``.

    Raises:
        InputError: naming the folder: not Inspect logs, several models, no knob or several
            knobs that vary, a log that does not set the knob, or a value that cannot be ordered.
    """
    logs = [s.log for s in sources]
    if not sources or any(log is None for log in logs):
        raise InputError("`ladder` reads a folder of Inspect eval logs", path=folder)
    models = sorted({log.model for log in logs if log is not None})
    if len(models) > 1:
        raise InputError(
            f"a ladder is one model's logs; this folder holds {', '.join(models)}", path=folder
        )
    settings = [dict(log.settings) for log in logs if log is not None]
    varying = [k for k in SETTING_KEYS if len({s.get(k) for s in settings}) > 1]
    if len(varying) != 1:
        shown = ", ".join(varying) if varying else f"none of {', '.join(SETTING_KEYS)}"
        raise InputError(
            f"a ladder's logs differ in exactly one setting; these differ in {shown}", path=folder
        )
    knob = varying[0]
    groups: dict[str, list[Source]] = {}
    for source, setting in zip(sources, settings, strict=True):
        if knob not in setting:
            message = f"the log does not set {knob} (the ladder's setting)"
            raise InputError(message, path=source.path)
        groups.setdefault(setting[knob], []).append(source)
    ordered = sorted(groups, key=lambda value: _rank(knob, value, folder))
    rungs = [(rung_name(knob, value), groups[value]) for value in ordered[1:]]
    return Ladder(knob, groups[ordered[0]], rungs)


def _rank(knob: str, value: str, folder: Path) -> float:
    """Where a setting's value stands on its ladder."""
    if knob in _NUMERIC:
        try:
            return float(value)
        except ValueError:
            pass
    elif value in EFFORT_ORDER:
        return float(EFFORT_ORDER.index(value))
    raise InputError(f"cannot order {knob}={value!r} on a ladder", path=folder)
