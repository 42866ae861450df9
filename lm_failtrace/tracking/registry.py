"""Registry side of tracking: the model version under evaluation, its router, and their links.

Link tags (all prefixed ``failtrace.``) are the only state that ties a model version to its
failure landscape and router; ``promote`` and ``status`` read nothing else.

- model version ``NAME/V``: ``failtrace.run_id`` (the landscape's parent run),
  ``failtrace.router`` (the router model version, ``NAME-router/R``), ``failtrace.input_hash``.
- router version ``NAME-router/R``: ``failtrace.source_model_name``,
  ``failtrace.source_model_version``, ``failtrace.run_id``, ``failtrace.input_hash``.

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
    from mlflow.entities.model_registry import ModelVersion

TAG_RUN = "failtrace.run_id"
TAG_ROUTER = "failtrace.router"
#: The link of versions logged before TAG_ROUTER: the router's version number alone.
TAG_LEGACY_ROUTER_VERSION = "failtrace.router_version"
TAG_HASH = "failtrace.input_hash"
TAG_SOURCE_NAME = "failtrace.source_model_name"
TAG_SOURCE_VERSION = "failtrace.source_model_version"
TAG_CHECKPOINT = "failtrace.checkpoint"

#: Tags on the model version that a log run sets or removes (and restores on failure).
MODEL_VERSION_LINK_TAGS: tuple[str, ...] = (
    TAG_RUN,
    TAG_ROUTER,
    TAG_HASH,
    TAG_LEGACY_ROUTER_VERSION,
)

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


#: MLflow error codes that mean "no such model, version or alias".
_MISSING_CODES = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE")


def get_version(client: MlflowClient, name: str, version: str) -> ModelVersion | None:
    """``name`` version ``version``, or None when the model or the version does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        if is_missing(exc):
            return None
        raise


def is_missing(exc: Exception) -> bool:
    """Whether an MLflow error says the model, version or alias does not exist.

    Reads ``error_code``, the attribute: MLflow 3's exceptions have no ``get_error_code()``. An
    unknown alias, or a version that is not a number, is MLflow's ``INVALID_PARAMETER_VALUE``.
    """
    return getattr(exc, "error_code", None) in _MISSING_CODES


def _register_external(client: MlflowClient, name: str, checkpoint: str) -> ModelVersion:
    """Represent a checkpoint stored elsewhere as an external LoggedModel and register it."""
    import mlflow

    tags = {TAG_CHECKPOINT: checkpoint}
    model = mlflow.create_external_model(name=name, model_type="llm", tags=tags)
    version = mlflow.register_model(f"models:/{model.model_id}", name, tags=tags)
    return client.get_model_version(name, version.version)


def _find_by_checkpoint(client: MlflowClient, name: str, checkpoint: str) -> ModelVersion | None:
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return None
    matches = [v for v in versions if v.tags.get(TAG_CHECKPOINT) == checkpoint]
    return max(matches, key=lambda v: int(v.version)) if matches else None


@dataclass(frozen=True)
class ResolvedModel:
    """The model version being evaluated, and whether this call registered it."""

    version: ModelVersion
    created: bool

    @property
    def model_id(self) -> str | None:
        return logged_model_id(self.version)


def resolve_model_version(
    client: MlflowClient, name: str, version: str | None, checkpoint: str | None
) -> ResolvedModel:
    """Find ``name``/``version``, or register ``checkpoint`` as an external model version.

    Without ``version``, the newest version already registered from the same ``checkpoint`` is
    reused (so re-running does not register the checkpoint twice). With a ``version`` that does not
    exist yet, the checkpoint is registered and must receive exactly that number (MLflow numbers
    versions itself); otherwise the new version is deleted again and the call fails.

    Raises:
        InputError: neither an existing version nor a checkpoint to register is given.
    """
    if version is not None:
        found = get_version(client, name, version)
        if found is not None:
            if checkpoint and found.tags.get(TAG_CHECKPOINT) not in (None, checkpoint):
                raise InputError(
                    f"{name} version {version} was registered from "
                    f"{found.tags[TAG_CHECKPOINT]}, not {checkpoint}",
                    parameter="checkpoint",
                )
            return ResolvedModel(found, created=False)
        if not checkpoint:
            raise InputError(
                f"registered model {name!r} has no version {version}; pass `checkpoint` to "
                "register the post-trained model as that version",
                parameter="model_version",
            )
    elif not checkpoint:
        raise InputError(
            "give `model_version` (an existing version) or `checkpoint` (to register one)",
            parameter="model_version",
        )
    else:
        found = _find_by_checkpoint(client, name, checkpoint)
        if found is not None:
            return ResolvedModel(found, created=False)
    created = _register_external(client, name, checkpoint)
    if version is not None and str(created.version) != str(version):
        client.delete_model_version(name, created.version)
        raise InputError(
            f"registering {checkpoint} would make it {name} version {created.version}, not "
            f"{version} (MLflow numbers versions itself); omit `model_version`",
            parameter="model_version",
        )
    print(f"registered {checkpoint} as {name} version {created.version}", file=sys.stderr)
    return ResolvedModel(created, created=True)


def find_logged(client: MlflowClient, name: str, version: ModelVersion, digest: str) -> str | None:
    """The router version already logged for this model version from the same input, if any.

    Only a complete earlier log counts: the model version's link tags point at a router version
    that exists and carries the same input hash and source model version.
    """
    tags = version.tags
    linked = linked_router_version(name, tags)
    if tags.get(TAG_HASH) != digest or not linked:
        return None
    router = get_version(client, router_name(name), linked)
    if router is None:
        return None
    rtags = router.tags
    same = (
        rtags.get(TAG_HASH) == digest
        and rtags.get(TAG_SOURCE_NAME) == name
        and rtags.get(TAG_SOURCE_VERSION) == str(version.version)
    )
    return str(router.version) if same else None
