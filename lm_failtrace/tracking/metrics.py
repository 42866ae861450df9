"""Turn an analysis document into MLflow metrics and params (flat names, finite numbers only).

The headline metrics are every finite number under the analysis sections that answer the
questions a team compares checkpoints on (regime mix, cross-validated rescue and spend of each
policy with its interval, the token budget in tokens, policy selection margins, regime
recoverability vs the majority rate, clustering stability, model identification), named by their
path in the document, so a metric in the UI can always be found in ``analysis.json`` under the
same name.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

#: Sections of a cell's analysis that become metrics (other sections stay in the JSON only).
CELL_SECTIONS: tuple[str, ...] = (
    "regimes",
    "published",
    "honest",
    "budget",
    "selection",
    "recoverability",
    "clustering",
)

#: Sections only the pooled analysis has that become metrics (besides the cell sections).
POOLED_SECTIONS: tuple[str, ...] = ("model_identification",)

#: MLflow's limit on a param value (characters).
PARAM_VALUE_LIMIT = 6000

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-./ ]")


def metric_name(*parts: str) -> str:
    """A metric key MLflow accepts: path parts joined by ``.``; ``@`` spelled ``_at_``."""
    joined = ".".join(p for p in parts if p)
    return _UNSAFE.sub("_", joined.replace("@", "_at_"))[:250]


def _leaves(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], float]]:
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        if math.isfinite(value):
            yield path, float(value)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, (*path, str(key)))


def flatten_metrics(document: Mapping[str, Any], sections: tuple[str, ...]) -> dict[str, float]:
    """Finite numeric leaves under ``sections`` of ``document`` (lists are not descended)."""
    out: dict[str, float] = {}
    for section in sections:
        if section in document:
            for path, number in _leaves(document[section], (section,)):
                out[metric_name(*path)] = number
    return out


def cell_metrics(cell_analysis: Mapping[str, Any]) -> dict[str, float]:
    """Headline metrics of one cell (see the module docstring)."""
    out = flatten_metrics(cell_analysis, CELL_SECTIONS)
    if isinstance(cell_analysis.get("n_units"), (int, float)):
        out["n_units"] = float(cell_analysis["n_units"])
    return out


def pooled_metrics(analysis: Mapping[str, Any]) -> dict[str, float]:
    """Headline metrics of the pooled analysis, prefixed ``pooled.``.

    Empty for a single cell: its pooled analysis is that cell's again (the same units), so every
    number is already a cell metric; repeating it under ``pooled.`` would only add noise.
    """
    if len(analysis.get("cells") or {}) < 2:
        return {}
    pooled = analysis.get("pooled") or {}
    return {
        metric_name("pooled", k): v
        for k, v in flatten_metrics(pooled, (*CELL_SECTIONS, *POOLED_SECTIONS)).items()
    }


def flat_params(prefix: str, values: Mapping[str, Any]) -> dict[str, str]:
    """String params ``prefix.key`` (nested values as compact JSON, clipped to the limit)."""
    out = {}
    for key, value in values.items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        out[metric_name(prefix, str(key))] = text[:PARAM_VALUE_LIMIT]
    return out
