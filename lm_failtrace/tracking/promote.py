"""Promote a model version and its router together under one alias; report alias consistency.

MLflow cannot alias two registered models in one transaction. ``promote`` therefore checks the
link tags first (refusing when they are missing or disagree), then moves the router's alias, then
the model's: the model alias is the commit point. If moving the model alias fails, the router
alias is put back where it was; if even that fails, :func:`status` shows the alias as
inconsistent (nothing repairs it silently; re-run ``promote``).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import asdict, dataclass

from lm_failtrace.errors import InputError
from lm_failtrace.tracking import claims, recovery, registry
from lm_failtrace.tracking.uri import resolve_tracking_uri, tracking_client

_ALIAS = re.compile(r"^[A-Za-z0-9_-]+$")


def _check_alias(alias: str) -> None:
    if not _ALIAS.match(alias) or alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise InputError(
            f"invalid alias {alias!r}: use letters, digits, '_' or '-', not 'latest' or v<digits>",
            parameter="alias",
        )


def _linked_router(client, model_name: str, version: str) -> str:
    """The router version linked to ``model_name``/``version``, after checking both sides agree."""
    mv = registry.get_version(client, model_name, version)
    if mv is None:
        raise registry.not_found(client, model_name, version=version, parameter="version")
    router_version = registry.linked_router_version(model_name, mv.tags)
    name = registry.router_name(model_name)
    if not router_version:
        raise InputError(
            f"{model_name} version {version} has no {registry.TAG_ROUTER} tag naming a version "
            f"of {name}: log its failure landscape first (failtrace log); refusing to promote"
        )
    rv = registry.get_version(client, name, router_version)
    if rv is None:
        raise InputError(
            f"{model_name} version {version} links to {name} version {router_version}, which does "
            "not exist; refusing to promote"
        )
    disagree = registry.link_disagreements(model_name, mv, rv)
    if disagree:
        detail = "; ".join(
            f"{k}: model says {a!r}, router says {b!r}" for k, (a, b) in disagree.items()
        )
        raise InputError(
            f"link tags of {model_name} version {version} and {name} version {router_version} "
            f"disagree ({detail}); refusing to promote. If a failtrace log was interrupted, "
            "`failtrace status` finishes or undoes it"
        )
    return router_version


def promote(
    model_name: str, version: str, alias: str, *, tracking_uri: str | None = None
) -> dict[str, str]:
    """Set ``alias`` on ``model_name``/``version`` and on its linked router version.

    Returns:
        ``{"alias", "model_name", "model_version", "router_name", "router_version"}``.

    Raises:
        InputError: bad alias, unknown version, or missing/disagreeing link tags.
    """
    from mlflow.exceptions import MlflowException

    _check_alias(alias)
    registry.check_model_name(model_name)
    client = tracking_client(resolve_tracking_uri(tracking_uri))
    router_version = _linked_router(client, model_name, str(version))
    name = registry.router_name(model_name)
    previous = client.get_registered_model(name).aliases.get(alias)
    client.set_registered_model_alias(name, alias, router_version)
    try:
        client.set_registered_model_alias(model_name, alias, str(version))
    except MlflowException:
        if previous is None:
            client.delete_registered_model_alias(name, alias)
        else:
            client.set_registered_model_alias(name, alias, previous)
        raise
    return {
        "alias": alias,
        "model_name": model_name,
        "model_version": str(version),
        "router_name": name,
        "router_version": router_version,
    }


@dataclass
class AliasStatus:
    """One alias: what it points at on both registered models and whether that agrees."""

    alias: str
    model_version: str | None
    linked_router_version: str | None
    router_alias_version: str | None
    consistent: bool
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class StatusReport:
    """A model's aliases, and what ``status`` found of interrupted or running logs.

    ``repaired``: what it finished or undid (:mod:`.recovery`); ``problems``: what is still
    wrong and how to fix it; ``in_progress``: logs running now (not touched).
    """

    aliases: list[AliasStatus]
    repaired: list[str]
    problems: list[str]
    in_progress: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems and all(a.consistent for a in self.aliases)

    def to_dict(self) -> dict:
        return {**asdict(self), "aliases": [a.to_dict() for a in self.aliases]}


def status(model_name: str, *, tracking_uri: str | None = None) -> StatusReport:
    """Per alias of ``model_name`` or its router: the versions and whether they are consistent.

    Consistent means: the model alias's version links (tag) to exactly the router version the
    router alias points at, and that router version's tags name this model version. Before that,
    what interrupted logs left is finished or undone (runs closed, orphan router versions
    deleted, links completed, dead claims broken) under each version's claim, and reported;
    versions a live log holds are left alone. Aliases are never moved.

    Raises:
        InputError: no such registered model (naming the models there are).
    """
    registry.check_model_name(model_name)
    client = tracking_client(resolve_tracking_uri(tracking_uri))
    report = StatusReport([], [], [], [])
    _break_dead_claims(client, model_name, report)
    if registry.get_model(client, model_name) is None:
        if report.repaired or report.in_progress:  # a first log that never got this far
            return report
        raise registry.not_found(client, model_name)
    _recover_all(client, model_name, report)
    model_aliases = _aliases(client, model_name) or {}
    router_aliases = _aliases(client, registry.router_name(model_name)) or {}
    for alias in sorted(set(model_aliases) | set(router_aliases)):
        version = model_aliases.get(alias)
        routed = router_aliases.get(alias)
        linked = None
        if version is not None:
            mv = registry.get_version(client, model_name, version)
            linked = registry.linked_router_version(model_name, mv.tags) if mv else None
        reason = _inconsistency(client, model_name, alias, version, linked, routed)
        report.aliases.append(
            AliasStatus(alias, version, linked, routed, reason == "", reason or "ok")
        )
    return report


def _break_dead_claims(client, model_name: str, report: StatusReport) -> None:
    """Name every log on the model's keys, running or interrupted; break the dead ones' claims."""
    me = f"status-{uuid.uuid4().hex[:12]}"
    for key, holder in claims.claims_of(client, model_name):
        if holder.alive():
            report.in_progress.append(f"failtrace log on {key}: {holder.describe()}")
            continue
        report.repaired.append(f"failtrace log on {key} was interrupted: {holder.describe()}")
        claim = claims.Claim(client, key, model_name, me)
        if claim.try_acquire() is None:  # breaks the dead claim
            claim.release()


def _recover_all(client, model_name: str, report: StatusReport) -> None:
    """Recover each version that needs it (under its claim), and list what is left."""
    experiment = client.get_experiment_by_name(registry.experiment_name(model_name))
    experiment_id = experiment.experiment_id if experiment is not None else None
    me = f"status-{uuid.uuid4().hex[:12]}"
    for mv in registry.all_versions(client, model_name):
        version = str(mv.version)
        if recovery.plan(client, model_name, version, experiment_id):
            claim = claims.Claim(client, f"{model_name} version {version}", model_name, me)
            holder = claim.try_acquire()
            if holder is not None:
                report.in_progress.append(f"version {version}: {holder.describe()}")
                continue
            try:
                notes = recovery.recover(client, model_name, version, experiment_id)
            finally:
                claim.release()
            report.repaired += [f"version {version}: {note}" for note in notes]
        report.problems += _link_problems(client, model_name, version)


def _link_problems(client, model_name: str, version: str) -> list[str]:
    """What is wrong with a version's link that status cannot repair, with the way out."""
    mv = registry.get_version(client, model_name, version)
    linked = registry.linked_router_version(model_name, mv.tags) if mv else None
    if mv is None or linked is None:
        return []
    rname = registry.router_name(model_name)
    rv = registry.get_version(client, rname, linked)
    if rv is None:
        return [
            f"version {version} links {rname} version {linked}, which does not exist: log its "
            "landscape again (failtrace log)"
        ]
    if registry.link_disagreements(model_name, mv, rv):
        return [f"version {version} and {rname} version {linked} disagree: log it again"]
    if mv.tags.get(registry.TAG_RUN, "") not in (mv.description or ""):
        return [
            f"version {version}: a failtrace log was interrupted before writing its "
            "description: rerun the same failtrace log to write it"
        ]
    return []


def _aliases(client, name: str) -> dict[str, str] | None:
    from mlflow.exceptions import MlflowException

    try:
        return {k: str(v) for k, v in client.get_registered_model(name).aliases.items()}
    except MlflowException:
        return None


def _inconsistency(client, model_name, alias, version, linked, routed) -> str:
    if version is None:
        return f"only {registry.router_name(model_name)} has alias {alias!r}"
    if routed is None:
        return f"{registry.router_name(model_name)} has no alias {alias!r}"
    if linked is None:
        return f"version {version} has no {registry.TAG_ROUTER} tag"
    if linked != routed:
        return f"version {version} links router version {linked}, alias points at {routed}"
    try:
        _linked_router(client, model_name, version)
    except InputError as exc:
        return str(exc)
    return ""
