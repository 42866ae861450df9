"""Finish or undo what an interrupted ``failtrace log`` left on one model version.

A log writes in this order (:mod:`lm_failtrace.tracking.logging`), every object tagged with its
attempt id: its runs, ended FINISHED; its router version, registered with the run, input hash and
model version it was fitted for but *without* the source tags that claim a model version; then
the model version's ``failtrace.router`` tag, which is the commit; then the model version's run
and hash tags, the router version's source tags and the model version's description. So what a
kill leaves is read back without knowing where it struck:

- the linked router version exists but the two sides do not agree yet: the attempt committed,
  and its link is completed from the router version's tags (rolled forward);
- a router version fitted for this model version that is not linked and never claimed it is an
  orphan of an attempt that did not commit: deleted (rolled back);
- runs of this model version left RUNNING, or FINISHED by an attempt that never committed, are
  closed FAILED; RUNNING runs of the committed attempt are closed FINISHED.

Only called under the claim on the model version (:mod:`.claims`), so no live attempt is
touched. The description is not written here (it needs the analysis): rerunning the same log
writes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lm_failtrace.tracking import registry

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion


@dataclass(frozen=True)
class Step:
    """One repair: what it does, in words, and the call that does it."""

    note: str
    act: Callable[[], Any]


def _fitted_for(model: str, version: str, rv: ModelVersion) -> bool:
    """Whether router version ``rv`` was fitted for ``model`` version ``version`` (the tag set at
    registration; routers logged before it by their source tags)."""
    tags = rv.tags
    if registry.TAG_FOR_VERSION in tags:
        return tags[registry.TAG_FOR_VERSION] == version
    source = (tags.get(registry.TAG_SOURCE_NAME), tags.get(registry.TAG_SOURCE_VERSION))
    return source == (model, version)


def _committed(rv: ModelVersion) -> bool:
    """Source tags are written only after the model version linked ``rv``: it was committed."""
    return registry.TAG_SOURCE_NAME in rv.tags or registry.TAG_SOURCE_VERSION in rv.tags


def _runs(client: Any, experiment_id: str, model: str, version: str) -> list[Run]:
    """The parent and task runs logged for ``model`` version ``version``."""
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{registry.TAG_SOURCE_VERSION}` = '{version}'",
        max_results=50_000,
    )
    return [r for r in found if r.data.tags.get(registry.TAG_SOURCE_NAME) == model]


def finish_link(client: Any, model: str, mv: ModelVersion, rv: ModelVersion) -> list[Step]:
    """Steps that complete a committed link to ``rv`` (the writes after the commit)."""
    name, version = model, str(mv.version)
    rname, rversion = registry.router_name(model), str(rv.version)
    steps = [
        Step(
            f"set {name} version {version}'s {key} from {rname} version {rversion}",
            lambda key=key: client.set_model_version_tag(name, version, key, rv.tags[key]),
        )
        for key in (registry.TAG_RUN, registry.TAG_HASH)
        if mv.tags.get(key) != rv.tags.get(key) and rv.tags.get(key)
    ]
    for key, value in ((registry.TAG_SOURCE_NAME, name), (registry.TAG_SOURCE_VERSION, version)):
        if rv.tags.get(key) != value:
            steps.append(
                Step(
                    f"set {rname} version {rversion}'s {key}",
                    lambda key=key, value=value: client.set_model_version_tag(
                        rname, rversion, key, value
                    ),
                )
            )
    if registry.TAG_LEGACY_ROUTER_VERSION in mv.tags:
        steps.append(
            Step(
                f"remove {name} version {version}'s {registry.TAG_LEGACY_ROUTER_VERSION}",
                lambda: client.delete_model_version_tag(
                    name, version, registry.TAG_LEGACY_ROUTER_VERSION
                ),
            )
        )
    return steps


def _close_runs(
    client: Any, runs: list[Run], committed: set[str], linked_run: str | None
) -> list[Step]:
    steps = []
    for run in runs:
        run_id, status = run.info.run_id, run.info.status
        attempt = run.data.tags.get(registry.TAG_ATTEMPT)
        done = attempt in committed if attempt else run_id == linked_run
        target = "FINISHED" if done else "FAILED"
        left = status == "RUNNING" or (status == "FINISHED" and not done and bool(attempt))
        if left and status != target:
            what = f"attempt {attempt}" if attempt else "an earlier log"
            steps.append(
                Step(
                    f"closed run {run_id} ({run.info.run_name}) of {what} as {target}",
                    lambda r=run_id, t=target: client.set_terminated(r, t),
                )
            )
    return steps


def plan(
    client: Any, model: str, version: str, experiment_id: str | None, *, live: str | None = None
) -> list[Step]:
    """What is left to finish or undo on ``model`` version ``version`` (nothing when clean).

    ``live``: the attempt of the caller, whose objects are never touched.
    """
    mv = registry.get_version(client, model, version)
    if mv is None:
        return []

    def theirs(tags: dict[str, str]) -> bool:
        return live is None or tags.get(registry.TAG_ATTEMPT) != live

    routers = [
        rv
        for rv in registry.all_versions(client, registry.router_name(model))
        if _fitted_for(model, version, rv) and theirs(rv.tags)
    ]
    linked = registry.linked_router_version(model, mv.tags)
    linked_rv = next((rv for rv in routers if str(rv.version) == linked), None)
    steps = []
    committed = {rv.tags.get(registry.TAG_ATTEMPT, "") for rv in routers if _committed(rv)}
    if linked_rv is not None:
        steps += finish_link(client, model, mv, linked_rv)
        committed.add(linked_rv.tags.get(registry.TAG_ATTEMPT, ""))
    rname = registry.router_name(model)
    steps += [
        Step(
            f"deleted orphan {rname} version {rv.version} (attempt "
            f"{rv.tags.get(registry.TAG_ATTEMPT)} stopped before linking it)",
            lambda rv=rv: client.delete_model_version(rname, str(rv.version)),
        )
        for rv in routers
        if rv is not linked_rv and not _committed(rv)
    ]
    if experiment_id is not None:
        runs = [r for r in _runs(client, experiment_id, model, version) if theirs(r.data.tags)]
        steps += _close_runs(client, runs, committed - {""}, mv.tags.get(registry.TAG_RUN))
    return steps


def recover(
    client: Any, model: str, version: str, experiment_id: str | None, *, live: str | None = None
) -> list[str]:
    """Carry out :func:`plan`; returns what was done, one line each."""
    steps = plan(client, model, version, experiment_id, live=live)
    for step in steps:
        step.act()
    return [step.note for step in steps]
