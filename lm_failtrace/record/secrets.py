"""Keep secrets passed as model arguments out of every file a run writes and everything it prints.

lm-eval merges model arguments into each task's ``metadata``, writes them to the results JSON and
prints them. ``failtrace eval`` therefore takes secret-looking arguments (and the credentials of
any URL among the arguments) out of the model arguments before lm-eval sees them, and keeps them
here, in process memory only, where our backends read them (:func:`private_arg`). Stock backends
need their arguments, so theirs pass through; what lm-eval prints during the run goes through
:func:`redacted_output`, and after the run :func:`redact_files` scrubs the files written (a
safety net for both cases).

One function decides what a secret looks like in text, :func:`redact_text`; everything else here
(files, streams, log records, errors, nested settings in :func:`redact`) applies it:

- the user information of any URL (``http://user:PASSWORD@host/...`` -> ``http://<redacted>@host``);
- every configured secret (:func:`secret_values`: model arguments with a secret name, URL
  credentials, :data:`SECRET_ENV`) of :data:`MIN_REDACT_LENGTH` characters or more, wherever it
  appears;
- a shorter secret (``token=abc``) wherever it is a whole argument value (after ``=`` or ``:``,
  up to a separator): replacing it anywhere would corrupt unrelated text.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lm_failtrace.errors import InputError
from lm_failtrace.outputs import atomic_output

#: Model-argument names treated as secret (case-insensitive, whole name): keys in any spelling
#: (``api_key``, ``apikey``, ``api-key``, ``apiKey``), tokens (but not ``add_bos_token`` or
#: ``tokenizer``), secrets, passwords, credentials, authorisation.
SECRET_NAME = re.compile(
    r"^(.*key|.*secret.*|.*passw(or)?d.*|((api|access|auth|bearer|hf|id|refresh|session)[-_]?)?"
    r"token|authorization|auth|.*credentials?)$",
    re.IGNORECASE,
)
#: Environment variables whose values are scrubbed from outputs too.
SECRET_ENV = ("OPENAI_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
#: Shorter values are only scrubbed where they are a whole argument value (see the module
#: docstring): text replacement anywhere would corrupt unrelated text.
MIN_REDACT_LENGTH = 8
REDACTED = "<redacted>"

#: The user information of a URL: ``scheme://USERINFO@``.
URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#@\s]+)@")
#: Characters that end an argument value (``k=v,k2=v2``, ``{'k': 'v'}``, JSON, query strings).
_VALUE_END = r"""(?=["',;&)}\]\s]|$)"""
#: ``key=value`` pairs in a model-argument string.
_PAIR = re.compile(r"([A-Za-z0-9_.-]+)(\s*=\s*)([^,\s]+)")

_private: dict[str, str] = {}


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.match(name))


def split_secrets(model_args: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Split model arguments into (public, secret) by :data:`SECRET_NAME`."""
    public = {k: v for k, v in model_args.items() if not is_secret_name(k)}
    secret = {k: str(v) for k, v in model_args.items() if is_secret_name(k)}
    return public, secret


def strip_userinfo(url: str) -> tuple[str, str | None]:
    """``url`` without the user information of its URL, and that user information (or None)."""
    match = URL_USERINFO.match(url)
    if match is None:
        return url, None
    return match["scheme"] + url[match.end() :], match["userinfo"]


def strip_userinfo_all(text: str) -> str:
    """``text`` with the user information of every URL in it removed (``URL|URL`` replicas)."""
    return URL_USERINFO.sub(lambda m: m["scheme"], text)


def basic_auth(userinfo: str | None) -> tuple[str, str] | None:
    """``user:password`` (percent-encoded, as in a URL) as the pair HTTP basic auth takes."""
    if userinfo is None:
        return None
    user, _, password = userinfo.partition(":")
    return unquote(user), unquote(password)


def url_credentials(model_args: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Split URL credentials off the arguments: (arguments with bare URLs, name -> full URL)."""
    public, private = dict(model_args), {}
    for name, value in model_args.items():
        if isinstance(value, str):
            bare = strip_userinfo_all(value)
            if bare != value:
                public[name], private[name] = bare, value
    return public, private


def stash(secret: Mapping[str, str]) -> None:
    """Keep secrets for this process's backends (never written anywhere)."""
    _private.update(secret)


def private_arg(name: str) -> str | None:
    """A secret model argument (or a URL with its credentials) stashed by ``failtrace eval``."""
    return _private.get(name)


@contextlib.contextmanager
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


def secret_values() -> list[str]:
    """Every secret value this process knows (stashed ones and :data:`SECRET_ENV`), any length."""
    values = set(_private.values()) | {os.environ[n] for n in SECRET_ENV if os.environ.get(n)}
    return sorted(v for v in values if v)


def known_secret_values() -> list[str]:
    """The secret values long enough to be replaced wherever they appear (as plain text)."""
    return [v for v in secret_values() if len(v) >= MIN_REDACT_LENGTH]


@functools.lru_cache(maxsize=8)
def _as_value(values: tuple[str, ...]) -> re.Pattern[str]:
    """Any of ``values`` as a whole argument value: after ``=`` or ``:`` (maybe quoted)."""
    alternatives = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
    return re.compile(rf"""(?P<pre>[=:]\s*["']?)(?:{alternatives}){_VALUE_END}""")


def redact_text(text: str, values: Iterable[str] | None = None) -> str:
    """``text`` with URL credentials and secret values replaced by :data:`REDACTED`.

    Args:
        text: any text (a line of a file, a message, a printed configuration).
        values: the secrets to scrub; default :func:`secret_values`.
    """
    values = secret_values() if values is None else [v for v in values if v]
    text = URL_USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    for value in sorted(values, key=len, reverse=True):
        if len(value) >= MIN_REDACT_LENGTH:
            text = text.replace(value, REDACTED)
    short = tuple(sorted(v for v in values if len(v) < MIN_REDACT_LENGTH))
    if short:
        text = _as_value(short).sub(lambda m: m["pre"] + REDACTED, text)
    return text


def redact(value: Any) -> Any:
    """``value`` with secrets replaced by :data:`REDACTED`: settings as lm-eval records them.

    Mappings lose the values of secret-named keys, ``k=v,...`` strings the values of secret-named
    pairs, every string the secrets :func:`redact_text` finds; lists and tuples are redacted item
    by item. Anything that logs or prints model arguments (MLflow params, descriptions) goes
    through this.
    """
    if isinstance(value, Mapping):
        return {k: REDACTED if is_secret_name(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        text = _PAIR.sub(
            lambda m: m[1] + m[2] + REDACTED if is_secret_name(m[1]) else m[0],
            value,
        )
        return REDACTED if text in secret_values() else redact_text(text)
    return value


def redact_error(error: InputError) -> InputError:
    """The same error with its message redacted (it may quote an argument or a URL)."""
    return InputError(
        redact_text(error.message),
        path=error.path,
        line=error.line,
        row=error.row,
        column=error.column,
        parameter=error.parameter,
    )


def redact_files(paths: Iterable[Path], values: Iterable[str]) -> list[Path]:
    """Apply :func:`redact_text` to each file, line by line (streaming), atomically.

    Returns the files that held a secret. Files without one are left untouched.
    """
    values = [v for v in values if v]
    changed = []
    for path in paths:
        if not _needs_redaction(path, values):
            continue
        with (
            atomic_output(path) as tmp,
            path.open("r", encoding="utf-8", errors="surrogateescape") as src,
            tmp.open("w", encoding="utf-8", errors="surrogateescape") as dst,
        ):
            for line in src:
                dst.write(redact_text(line, values))
        changed.append(path)
    return changed


def _needs_redaction(path: Path, values: list[str]) -> bool:
    with path.open("r", encoding="utf-8", errors="surrogateescape") as fh:
        return any(redact_text(line, values) != line for line in fh)


class _RedactingStream:
    """A text stream that redacts each write before passing it on (attributes pass through)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact_text(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _RedactingFilter(logging.Filter):
    """Redacts a log record's message before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        with contextlib.suppress(Exception):  # a malformed record is logging's to report
            record.msg, record.args = redact_text(record.getMessage()), None
        return True


@contextlib.contextmanager
def redacted_output() -> Iterator[None]:
    """Redact everything printed inside the block: ``sys.stdout``, ``sys.stderr`` and every
    logging handler that exists when it starts (lm-eval's holds the original ``sys.stderr``)."""
    handlers = {
        handler
        for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
        for handler in getattr(logger, "handlers", ())
    }
    redacting = _RedactingFilter()
    for handler in handlers:
        handler.addFilter(redacting)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _RedactingStream(sys.stdout), _RedactingStream(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
        for handler in handlers:
            handler.removeFilter(redacting)
