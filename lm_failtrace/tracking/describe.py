"""Markdown descriptions of the registered versions: what a landscape says, what its router does.

MLflow shows a model version's description, rendered as Markdown, at the top of its page. The
link tags stay the machine-readable state (:mod:`lm_failtrace.tracking.registry`); these texts
are what a person reads there: the regime shares with their intervals, the selected policy and
its held-out gains, pass@k, and where the run, its ``report.html`` and the router are.

Links are URLs when the tracking URI is an http(s) server (its UI is served at the same
address); for any other store (a local sqlite database) they are relative to the UI showing the
page (``#/models/...``: `mlflow ui` on that database serves the same routes), and the text says
the run id and the artifact path too, with the command that opens the UI.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from lm_failtrace.formatting import format_interval
from lm_failtrace.profiles import cell_task
from lm_failtrace.record.secrets import strip_userinfo
from lm_failtrace.report.summary import selection_margin, share_interval

#: MLflow's SQL registry keeps at most this many characters of a model version's description.
DESCRIPTION_LIMIT = 5000

#: Tasks listed in a description's table; further tasks are counted, not listed.
MAX_TASK_ROWS = 20

#: The analysis's name of the best fixed operator policy, and of resampling without a change.
BEST_FIXED = "best_fixed"
RETRY = "retry"


@dataclass(frozen=True)
class Where:
    """Where a landscape was logged, to link to (URLs on an http(s) server, else words)."""

    tracking_uri: str
    experiment_id: str
    run_id: str

    def __post_init__(self) -> None:
        # Descriptions are shown to everyone who can read the registry: no URL credentials
        # (dropped, not masked, so that the links still work).
        object.__setattr__(self, "tracking_uri", strip_userinfo(self.tracking_uri)[0])

    @property
    def base(self) -> str:
        """Prefix of UI routes: the server's address, or empty (relative to the UI showing it)."""
        uri = self.tracking_uri
        return f"{uri.rstrip('/')}/" if uri.startswith(("http://", "https://")) else ""

    def _run_route(self) -> str:
        return f"{self.base}#/experiments/{quote(self.experiment_id)}/runs/{quote(self.run_id)}"

    def run(self) -> str:
        return f"[run `{self.run_id}`]({self._run_route()}) (experiment id {self.experiment_id})"

    def artifact(self, path: str) -> str:
        """An artifact of the run, linked to its page in the run's artifact browser."""
        return f"[`{path}`]({self._run_route()}/artifacts/{quote(path)})"

    def model_version(self, name: str, version: str) -> str:
        route = f"{self.base}#/models/{quote(name, safe='')}/versions/{quote(str(version))}"
        return f"[`{name}` version {version}]({route})"

    def how_to_open(self) -> str:
        if self.base:
            return ""
        return f"Open the MLflow UI with `mlflow ui --backend-store-uri {self.tracking_uri}`."


def _number(value: float, percent: bool, signed: bool = False) -> str:
    if percent:
        return f"{value:+.1%}" if signed else f"{value:.1%}"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def interval_text(entry: Mapping[str, Any], *, percent: bool = False, signed: bool = False) -> str:
    """``mean [ci_low, ci_high]``; ``mean (too few units)`` when the analysis gave no interval."""
    return format_interval(
        entry, lambda v: _number(v, percent, signed), lambda v: _number(v, percent)
    )


def share_text(regimes: Mapping[str, Any], regime: str) -> str:
    """A regime's count and share of units, with its interval when the analysis gives one."""
    count = (regimes.get("counts") or {}).get(regime)
    interval = share_interval(regimes, regime)
    if interval is not None:
        share = interval_text(interval, percent=True)
    else:
        fraction = (regimes.get("fractions") or {}).get(regime)
        share = "n/a" if fraction is None else _number(fraction, percent=True)
    return share if count is None else f"{count} ({share})"


def _pass_text(values: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in values.items()) or "n/a"


def regime_table(
    analysis: Mapping[str, Any], pass_at_k: Mapping[str, Mapping[str, float]]
) -> list[str]:
    """Markdown table: one row per task (and all tasks, when several), regime shares, pass@k."""
    cells = analysis.get("cells") or {}
    regimes = list(((analysis.get("pooled") or {}).get("regimes") or {}).get("counts") or {})
    with_pass = any(pass_at_k.get(cell_task(cell)) for cell in cells)
    head = ["task", "failure units", *(r.replace("_", " ") for r in regimes)]
    head += ["pass@k (lm-eval)"] if with_pass else []
    rows = [f"| {' | '.join(head)} |", f"|{'---|' * len(head)}"]
    sections = [(cell_task(c), s) for c, s in list(cells.items())[:MAX_TASK_ROWS]]
    if len(cells) > 1:
        sections.append((None, analysis.get("pooled") or {}))
    for task, section in sections:
        row = [f"`{task}`" if task else "all tasks", str(section.get("n_units", "n/a"))]
        row += [share_text(section.get("regimes") or {}, r) for r in regimes]
        if with_pass:
            row.append(_pass_text(pass_at_k.get(task, {})) if task else "")
        rows.append(f"| {' | '.join(row)} |")
    if len(cells) > MAX_TASK_ROWS:
        rows.append(f"\n{len(cells) - MAX_TASK_ROWS} more tasks: see `analysis.json`.")
    return rows


def gain_text(selection: Mapping[str, Any], other: str) -> str:
    """The selected policy's held-out gain over ``other``: the paired interval when the analysis
    has one (``margin_over_<other>``, or the runner-up's margin when that is ``other``), else the
    difference of the two means."""
    selected = selection.get("selected")
    if selected == other:
        return f"n/a: the selected policy is `{other}` itself"
    margin = selection_margin(selection, other)
    if margin is not None:
        return interval_text(margin, signed=True)
    means = {row.get("policy"): row.get("mean") for row in selection.get("ranking") or ()}
    if means.get(selected) is None or means.get(other) is None:
        return f"n/a (`{other}` was not evaluated)"
    return f"{means[selected] - means[other]:+.3f} (difference of means; no paired interval)"


def policy_lines(analysis: Mapping[str, Any]) -> list[str]:
    """The selected policy, its held-out rescue and its gains over retry and best fixed."""
    pooled = analysis.get("pooled") or {}
    selection = pooled.get("selection") or {}
    selected = selection.get("selected")
    if not selected:
        why = selection.get("skipped", "no selection in the analysis")
        return [f"No policy was selected: {why}."]
    population = selection.get("population", "all_failures")
    rescue = ((pooled.get("honest") or {}).get(population) or {}).get(selected) or selection
    confidence = (analysis.get("config") or {}).get("confidence", 0.95)
    return [
        f"**Selected policy: `{selected}`**, held-out rescue {interval_text(rescue)} of "
        f"{population.replace('_', ' ')} (cross-validated; intervals {confidence:.0%}).",
        "",
        f"- gain over `{RETRY}`: {gain_text(selection, RETRY)}",
        f"- gain over the best fixed operator: {gain_text(selection, BEST_FIXED)}",
    ]


def _clip(text: str) -> str:
    if len(text) <= DESCRIPTION_LIMIT:
        return text
    note = "\n\n(clipped: see `analysis.json`)"
    return text[: DESCRIPTION_LIMIT - len(note)] + note


def model_version_description(
    analysis: Mapping[str, Any],
    pass_at_k: Mapping[str, Mapping[str, float]],
    *,
    model: tuple[str, str],
    router: tuple[str, str],
    where: Where,
    digest: str,
) -> str:
    """The model version's description: regimes, policy, pass@k, router and run links.

    Args:
        analysis: the analysis document.
        pass_at_k: task -> {pass@k: value} from lm-eval (may be empty).
        model, router: (registered model name, version) of the model and of its router.
        where: the run the landscape was logged to.
        digest: the input hash.
    """
    units = (analysis.get("pooled") or {}).get("n_units", "n/a")
    lines = [
        f"### Failure landscape of `{model[0]}` version {model[1]}",
        "",
        f"{units} failure units; each regime's count and share of the units (with its interval):",
        "",
        *regime_table(analysis, pass_at_k),
        "",
        *policy_lines(analysis),
        "",
        f"**Router**: {where.model_version(*router)} routes failures with this policy.",
        "",
        f"**Results**: {where.run()}, with the report {where.artifact('report.html')} and the "
        f"per-unit profiles {where.artifact('profiles.json')} (a table); input sha256 "
        f"`{digest[:12]}`.",
    ]
    if where.how_to_open():
        lines += ["", where.how_to_open()]
    return _clip("\n".join(lines))


def _estimator_text(spec: Mapping[str, Any] | None) -> str:
    if not spec:
        return "n/a"
    params = json.dumps(spec.get("params") or {}, sort_keys=True, default=str)
    params = params if len(params) <= 120 else params[:117] + "..."
    return f"`{spec.get('estimator', '?')}` {params}"


def _names(values: Sequence[str]) -> str:
    return ", ".join(f"`{v}`" for v in values) or "none"


def budget_text(budget: Mapping[str, Any]) -> str:
    """The router's token budget and cost weights, or why none applies."""
    if not budget:
        return "n/a"
    if not budget.get("applied"):
        return f"not applied ({budget.get('note', 'no token counts')})"
    weights = {**(budget.get("lambda_per_task") or {}), "pooled": budget.get("lambda_pooled")}
    shown = ", ".join(
        f"`{task}` {'none' if lam is None else f'{lam:.4g}'}" for task, lam in weights.items()
    )
    text = f"{budget['token_budget']:g}x always-retry's mean generated tokens per failure unit"
    if all(lam is None for lam in weights.values()):
        return text + " (the selected policy weighs no cost)"
    return f"{text}; cost weight lambda per fit: {shown}; it may output `skip` (no repair)"


def router_version_description(
    router_params: Mapping[str, Any],
    analysis: Mapping[str, Any],
    *,
    model: tuple[str, str],
    router: tuple[str, str],
    where: Where,
    digest: str,
) -> str:
    """The router version's description: whose router it is, what it routes, its measured gain."""
    selection = router_params.get("selection") or (analysis.get("pooled") or {}).get("selection")
    per_task = router_params.get("per_task") or {}
    units = (analysis.get("pooled") or {}).get("n_units", "n/a")
    lines = [
        f"### Router of {where.model_version(*model)}",
        "",
        f"Fitted on that version's failure landscape ({units} failure units; tasks "
        f"{_names(list(per_task))}), logged in {where.run()}; input sha256 `{digest[:12]}`.",
        "",
        f"Routes each failure unit to one repair operator with the policy "
        f"**`{router_params.get('policy', 'n/a')}`**, chosen by cross-validated selection.",
        "",
        f"- measured held-out gain over `{RETRY}`: {gain_text(selection or {}, RETRY)}",
        f"- measured held-out gain over the best fixed operator: "
        f"{gain_text(selection or {}, BEST_FIXED)}",
        f"- token budget: {budget_text(router_params.get('budget') or {})}",
        f"- operators (outputs): {_names(router_params.get('operators') or ())}",
        f"- features (inputs): {_names(router_params.get('features') or ())}, and an optional "
        "`task` column",
        *(f"- task `{task}`: {_estimator_text(spec)}" for task, spec in per_task.items()),
        f"- any other task, or no `task`: {_estimator_text(router_params.get('pooled'))}",
        "",
        f'Load: `mlflow.pyfunc.load_model("models:/{router[0]}/{router[1]}")`. The report: '
        f"{where.artifact('report.html')} of that run.",
    ]
    return _clip("\n".join(lines))
