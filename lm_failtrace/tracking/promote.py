"""Promote a model version and its router together under one alias; report alias consistency.

MLflow cannot alias two registered models in one transaction. ``promote`` therefore checks the
link tags first (refusing when they are missing or disagree), then moves the router's alias, then
the model's: the model alias is the commit point. If moving the model alias fails, the router
alias is put back where it was; if even that fails, :func:`status` shows the alias as
inconsistent (nothing repairs it silently; re-run ``promote``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from lm_failtrace.errors import InputError
from lm_failtrace.tracking import registry
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
        raise InputError(
            f"registered model {model_name!r} has no version {version}", parameter="version"
        )
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
    expected = {
        registry.TAG_SOURCE_NAME: model_name,
        registry.TAG_SOURCE_VERSION: str(version),
        registry.TAG_RUN: mv.tags.get(registry.TAG_RUN),
        registry.TAG_HASH: mv.tags.get(registry.TAG_HASH),
    }
    disagree = {k: (v, rv.tags.get(k)) for k, v in expected.items() if rv.tags.get(k) != v}
    if disagree:
        detail = "; ".join(
            f"{k}: model says {a!r}, router says {b!r}" for k, (a, b) in disagree.items()
        )
        raise InputError(
            f"link tags of {model_name} version {version} and {name} version {router_version} "
            f"disagree ({detail}); refusing to promote"
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


def status(model_name: str, *, tracking_uri: str | None = None) -> list[AliasStatus]:
    """Per alias of ``model_name`` or its router: the versions and whether they are consistent.

    Consistent means: the model alias's version links (tag) to exactly the router version the
    router alias points at, and that router version's tags name this model version. Nothing is
    changed.
    """
    client = tracking_client(resolve_tracking_uri(tracking_uri))
    rname = registry.router_name(model_name)
    model_aliases = _aliases(client, model_name)
    router_aliases = _aliases(client, rname)
    if model_aliases is None:
        raise InputError(f"no registered model {model_name!r}", parameter="model_name")
    router_aliases = router_aliases or {}
    rows = []
    for alias in sorted(set(model_aliases) | set(router_aliases)):
        version = model_aliases.get(alias)
        routed = router_aliases.get(alias)
        linked = None
        if version is not None:
            mv = registry.get_version(client, model_name, version)
            linked = registry.linked_router_version(model_name, mv.tags) if mv else None
        reason = _inconsistency(client, model_name, alias, version, linked, routed)
        rows.append(AliasStatus(alias, version, linked, routed, reason == "", reason or "ok"))
    return rows


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
