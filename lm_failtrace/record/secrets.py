"""Keep secrets passed as model arguments out of every file a run writes.

lm-eval merges model arguments into each task's ``metadata``, writes them to the results JSON and
prints them. ``failtrace eval`` therefore takes secret-looking arguments out of the model
arguments before lm-eval sees them and keeps them here, in process memory only, where our
backends read them (:func:`private_arg`). Stock backends need their arguments, so theirs pass
through; after the run :func:`redact_files` replaces every known secret value in the files written
(a safety net for both cases).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Model-argument names treated as secret (case-insensitive, whole name).
SECRET_NAME = re.compile(
    r"^(api_key|token|.*_key|.*secret.*|password|passwd|authorization|auth|"
    r"access_token|auth_token|hf_token|bearer_token)$",
    re.IGNORECASE,
)
#: Environment variables whose values are scrubbed from outputs too.
SECRET_ENV = ("OPENAI_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
#: Shorter values are not scrubbed by text replacement (it would corrupt unrelated text).
MIN_REDACT_LENGTH = 8
REDACTED = "<redacted>"

_private: dict[str, str] = {}


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.match(name))


def split_secrets(model_args: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Split model arguments into (public, secret) by :data:`SECRET_NAME`."""
    public = {k: v for k, v in model_args.items() if not is_secret_name(k)}
    secret = {k: str(v) for k, v in model_args.items() if is_secret_name(k)}
    return public, secret


def stash(secret: Mapping[str, str]) -> None:
    """Keep secrets for this process's backends (never written anywhere)."""
    _private.update(secret)


def private_arg(name: str) -> str | None:
    """A secret model argument stashed by ``failtrace eval``, if any."""
    return _private.get(name)


@contextmanager
def stash_scope() -> Iterator[None]:
    """Forget, when the block ends, what was stashed inside it.

    One process may record several runs (``run_eval`` is a library call): one run's key must not
    reach the next run's backend, which would otherwise prefer it to ``OPENAI_API_KEY``.
    """
    saved = dict(_private)
    try:
        yield
    finally:
        _private.clear()
        _private.update(saved)


def known_secret_values() -> list[str]:
    """Every secret value this process knows (stashed ones and :data:`SECRET_ENV`)."""
    values = set(_private.values()) | {os.environ[n] for n in SECRET_ENV if os.environ.get(n)}
    return sorted(v for v in values if len(v) >= MIN_REDACT_LENGTH)


def redact_files(paths: Iterable[Path], values: Iterable[str]) -> list[Path]:
    """Replace each value by :data:`REDACTED` in the files, line by line (streaming), atomically.

    Returns the files that contained a secret. Files without one are left untouched.
    """
    values = [v for v in values if v]
    changed = []
    if not values:
        return changed
    for path in paths:
        if not _contains_any(path, values):
            continue
        tmp = path.with_name(f".{path.name}.redact.tmp")
        with (
            path.open("r", encoding="utf-8", errors="surrogateescape") as src,
            tmp.open("w", encoding="utf-8", errors="surrogateescape") as dst,
        ):
            for line in src:
                for value in values:
                    line = line.replace(value, REDACTED)
                dst.write(line)
        os.replace(tmp, path)
        changed.append(path)
    return changed


def _contains_any(path: Path, values: list[str]) -> bool:
    needles = [v.encode("utf-8") for v in values]
    overlap = max(len(n) for n in needles)
    previous = b""
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            window = previous + chunk
            if any(n in window for n in needles):
                return True
            previous = window[-overlap:]
    return False
