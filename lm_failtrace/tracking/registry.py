"""Registry side of tracking: the model version under evaluation, its router, and their links.

Link tags (all prefixed ``failtrace.``) are the only state that ties a model version to its
failure landscape and router; ``promote`` and ``status`` read nothing else.

- model version ``NAME/V``: ``failtrace.run_id`` (the landscape's parent run),
  ``failtrace.router`` (the router model version, ``NAME-router/R``), ``failtrace.input_hash``.
- router version ``NAME-router/R``: ``failtrace.source_model_name``,
  ``failtrace.source_model_version``, ``failtrace.run_id``, ``failtrace.input_hash``.

A router version is registered with ``failtrace.run_id``, ``failtrace.input_hash``,
``failtrace.attempt`` and ``failtrace.for_model_version``; its source tags are written only after
the model version links it (:mod:`.logging` gives the order, :mod:`.recovery` what a kill leaves).
A router version superseded by a later log keeps its source tags: its model version links a newer
one.

Versions logged before the ``failtrace.router`` tag carry ``failtrace.router_version=R`` instead;
it is still read (:func:`linked_router_version`), and a new log replaces it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lm_failtrace.errors import InputError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel

TAG_RUN = "failtrace.run_id"
TAG_ROUTER = "failtrace.router"
#: The link of versions logged before TAG_ROUTER: the router's version number alone.
TAG_LEGACY_ROUTER_VERSION = "failtrace.router_version"
TAG_HASH = "failtrace.input_hash"
TAG_SOURCE_NAME = "failtrace.source_model_name"
TAG_SOURCE_VERSION = "failtrace.source_model_version"
TAG_CHECKPOINT = "failtrace.checkpoint"
#: The log attempt that created a run, a router version or a registered checkpoint (and that
#: holds a claim): how recovery tells the leftovers of a dead attempt from finished work.
TAG_ATTEMPT = "failtrace.attempt"
#: On a router version: the model version it was fitted for, set at registration. The source
#: tags (``failtrace.source_model_*``) are set only once the model version links to it.
TAG_FOR_VERSION = "failtrace.for_model_version"

_MODEL_ID = re.compile(r"^models:/(m-[0-9a-f]+)$")


def router_name(model_name: str) -> str:
    """The registered model holding ``model_name``'s routers."""
    return f"{model_name}-router"


def router_link(model_name: str, router_version: str) -> str:
    """The ``failtrace.router`` tag value: the router model and its version, ``NAME-router/R``."""
    return f"{router_name(model_name)}/{router_version}"


def linked_router_version(model_name: str, tags: Mapping[str, str]) -> str | None:
    """The version of ``model_name``'s router that a model version's tags link to, if any.

    Reads ``failtrace.router`` (``NAME-router/R``; a value naming another registered model links
    to nothing), else the older ``failtrace.router_version``.
    """
    link = tags.get(TAG_ROUTER)
    if link:
        name, _, version = link.rpartition("/")
        return version if name == router_name(model_name) and version else None
    return tags.get(TAG_LEGACY_ROUTER_VERSION) or None


def experiment_name(model_name: str) -> str:
    """The experiment holding ``model_name``'s failure-landscape runs (stated convention)."""
    return f"failtrace/{model_name}"


def logged_model_id(version: ModelVersion) -> str | None:
    """The LoggedModel behind a version (``model_id`` is None from the SQL registry: use source)."""
    if getattr(version, "model_id", None):
        return version.model_id
    match = _MODEL_ID.match(version.source or "")
    return match.group(1) if match else None


def check_model_name(name: str) -> None:
    """Refuse a name MLflow's registry would refuse, before anything is written.

    MLflow's own rule (its validator, so that every name MLflow accepts works here): not empty,
    no ``/`` or ``:``, and not a path that normalises to another name (``a/..``, ``./a``).
    Names with both kinds of quotes cannot be searched for, so they are refused too.

    Raises:
        InputError: naming ``model_name`` and the rule.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import _validate_model_name

    if not name or not name.strip():
        rule = "the name is empty"
    elif "'" in name and '"' in name:
        rule = "a name with both ' and \" cannot be searched for in MLflow's filter syntax"
    else:
        try:
            _validate_model_name(name)
            return
        except MlflowException as exc:
            rule = exc.message
    raise InputError(
        f"{name!r} is not a registered model name MLflow accepts ({rule}). MLflow's rule: a "
        "non-empty name without '/' or ':' that does not read as a path to another name",
        parameter="model_name",
    )


def logged_model_name(name: str) -> str:
    """A LoggedModel name for registered model ``name``: MLflow also refuses ``. % ' "`` there."""
    return re.sub(r"[/:.%'\"]", "-", name) or "model"


def name_filter(name: str) -> str:
    """``name = '<name>'`` for MLflow's search filters, quoted with a quote the name lacks."""
    quote = '"' if "'" in name else "'"
    return f"name = {quote}{name}{quote}"


def is_missing(exc: Exception) -> bool:
    """Whether an MLflow error says the model or version does not exist (``error_code``)."""
    return getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


def get_version(client: MlflowClient, name: str, version: str) -> ModelVersion | None:
    """``name`` version ``version``, or None when the model or the version does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        if is_missing(exc):
            return None
        raise


def get_model(client: MlflowClient, name: str) -> RegisteredModel | None:
    """Registered model ``name``, or None when it does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if is_missing(exc):
            return None
        raise


def all_versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    """Every version of ``name``, oldest first (none when the model does not exist)."""
    versions = client.search_model_versions(name_filter(name), max_results=10_000)
    return sorted(versions, key=lambda v: int(v.version))


def _listing(items: list[str], what: str) -> str:
    shown = ", ".join(items[:20]) + (f", ... ({len(items)} in all)" if len(items) > 20 else "")
    return f"{what}: {shown}" if items else f"no {what}"


def not_found(
    client: MlflowClient,
    name: str,
    *,
    version: str | None = None,
    alias: str | None = None,
    parameter: str = "model_name",
) -> InputError:
    """The error for a missing model, version or alias: what is missing and what exists."""
    what = f"version {version}" if version is not None else f"alias {alias!r}"
    model = get_model(client, name)
    if model is None:
        found = client.search_registered_models(max_results=1000)
        names = sorted(m.name for m in found if not m.name.startswith("failtrace-lock-"))
        missing = f"no registered model {name!r} in this store"
        listing = _listing(names, "registered models")
        if version is None and alias is None:
            return InputError(f"{missing} ({listing})", parameter="model_name")
        return InputError(
            f"registered model {name!r} has no {what}: there is {missing} ({listing})",
            parameter=parameter,
        )
    if version is not None:
        existing = _listing([str(v.version) for v in all_versions(client, name)], "versions")
    else:
        existing = _listing(
            [f"{a} -> version {v}" for a, v in sorted(model.aliases.items())], "aliases"
        )
    return InputError(f"registered model {name!r} has no {what} ({existing})", parameter=parameter)


def _register_external(
    client: MlflowClient, name: str, checkpoint: str, attempt: str
) -> ModelVersion:
    """Represent a checkpoint stored elsewhere as an external LoggedModel and register it.

    One write creates the version with its tags: a version exists with its checkpoint or not at
    all (an external LoggedModel left by a kill in between is registered by nothing).
    """
    import mlflow

    tags = {TAG_CHECKPOINT: checkpoint, TAG_ATTEMPT: attempt}
    model = mlflow.create_external_model(name=logged_model_name(name), model_type="llm", tags=tags)
    version = mlflow.register_model(f"models:/{model.model_id}", name, tags=tags)
    return client.get_model_version(name, version.version)


def _find_by_checkpoint(client: MlflowClient, name: str, checkpoint: str) -> ModelVersion | None:
    matches = [v for v in all_versions(client, name) if v.tags.get(TAG_CHECKPOINT) == checkpoint]
    return matches[-1] if matches else None


@dataclass(frozen=True)
class ResolvedModel:
    """The model version being evaluated, and whether this call registered it."""

    version: ModelVersion
    created: bool

    @property
    def model_id(self) -> str | None:
        return logged_model_id(self.version)


def find_model_version(
    client: MlflowClient, name: str, version: str | None, checkpoint: str | None
) -> ModelVersion | None:
    """The existing version to log to: ``version``, else the newest from ``checkpoint``.

    Raises:
        InputError: neither is given; ``version`` exists but came from another checkpoint; or
            ``version`` does not exist and there is no checkpoint to register as it.
    """
    if version is None and not checkpoint:
        raise InputError(
            "give `model_version` (an existing version) or `checkpoint` (to register one)",
            parameter="model_version",
        )
    if version is None:
        return _find_by_checkpoint(client, name, checkpoint or "")
    found = get_version(client, name, version)
    if found is None:
        if not checkpoint:
            error = not_found(client, name, version=version, parameter="model_version")
            raise InputError(
                f"{error.message}; pass `checkpoint` to register the post-trained model as "
                "that version",
                parameter="model_version",
            )
        return None
    if checkpoint and found.tags.get(TAG_CHECKPOINT) not in (None, checkpoint):
        raise InputError(
            f"{name} version {version} was registered from "
            f"{found.tags[TAG_CHECKPOINT]}, not {checkpoint}",
            parameter="checkpoint",
        )
    return found


def resolve_model_version(
    client: MlflowClient, name: str, version: str | None, checkpoint: str | None, attempt: str
) -> ResolvedModel:
    """Find ``name``/``version``, or register ``checkpoint`` as an external model version.

    Without ``version``, the newest version already registered from the same ``checkpoint`` is
    reused (so re-running does not register the checkpoint twice; callers hold the claim on the
    checkpoint, so concurrent runs do not either). With a ``version`` that does not exist yet,
    the checkpoint is registered and must receive exactly that number (MLflow numbers versions
    itself); otherwise the new version is deleted again and the call fails.

    Raises:
        InputError: see :func:`find_model_version`; the checkpoint would get another number.
    """
    found = find_model_version(client, name, version, checkpoint)
    if found is not None:
        return ResolvedModel(found, created=False)
    created = _register_external(client, name, checkpoint or "", attempt)
    if version is not None and str(created.version) != str(version):
        client.delete_model_version(name, created.version)
        raise InputError(
            f"registering {checkpoint} would make it {name} version {created.version}, not "
            f"{version} (MLflow numbers versions itself); omit `model_version`",
            parameter="model_version",
        )
    print(f"registered {checkpoint} as {name} version {created.version}", file=sys.stderr)
    return ResolvedModel(created, created=True)


def link_disagreements(
    model_name: str, mv: ModelVersion, rv: ModelVersion
) -> dict[str, tuple[str | None, str | None]]:
    """Tag -> (what the model version implies, what the router version says), where they differ.

    Empty when the router version names this model version as its source and carries the same
    run and input hash as the model version's link tags.
    """
    expected = {
        TAG_SOURCE_NAME: model_name,
        TAG_SOURCE_VERSION: str(mv.version),
        TAG_RUN: mv.tags.get(TAG_RUN),
        TAG_HASH: mv.tags.get(TAG_HASH),
    }
    return {k: (v, rv.tags.get(k)) for k, v in expected.items() if rv.tags.get(k) != v}


@dataclass(frozen=True)
class Logged:
    """An earlier complete log of the same input: its router version, and whether the model
    version's description (written after the link) was written too."""

    router_version: str
    described: bool


def find_logged(
    client: MlflowClient, name: str, version: ModelVersion, digest: str
) -> Logged | None:
    """The log of this input that the model version links to, if the link is complete.

    Complete: the model version's link tags point at a router version that exists, names this
    model version as its source and carries the same run and input hash (``digest``).
    """
    linked = linked_router_version(name, version.tags)
    if version.tags.get(TAG_HASH) != digest or not linked:
        return None
    router = get_version(client, router_name(name), linked)
    if router is None or link_disagreements(name, version, router):
        return None
    described = version.tags[TAG_RUN] in (version.description or "")
    return Logged(str(router.version), described)
