"""What both backends need from lm-eval's ``gen_kwargs``: sampling settings and stop handling."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lm_failtrace.errors import InputError


@dataclass(frozen=True)
class GenerationSettings:
    """One request's sampling settings, parsed from lm-eval's ``gen_kwargs``.

    Attributes:
        until: stop strings; the completion is cut before the first one found.
        max_gen_toks: the new-token limit; reaching it is finish reason ``"length"``.
        temperature: sampling temperature; 0 (or ``do_sample: false``) means greedy.
        top_p, top_k: nucleus / top-k truncation (``None`` = off).
        extra: any other keys, for backends that can pass them on (servers); the HF backend
            rejects them rather than ignore a setting the user asked for.
    """

    until: tuple[str, ...]
    max_gen_toks: int
    temperature: float
    top_p: float | None = None
    top_k: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    @classmethod
    def from_gen_kwargs(
        cls, gen_kwargs: Mapping[str, Any], default_max_gen_toks: int
    ) -> GenerationSettings:
        """Parse ``gen_kwargs`` as lm-eval passes them (``until`` may be a string or a list)."""
        kwargs = dict(gen_kwargs)
        until = kwargs.pop("until", None) or ()
        if isinstance(until, str):
            until = (until,)
        max_gen_toks = int(kwargs.pop("max_gen_toks", default_max_gen_toks))
        if max_gen_toks < 1:
            raise InputError(f"max_gen_toks must be >= 1, got {max_gen_toks}", column="gen_kwargs")
        do_sample = bool(kwargs.pop("do_sample", True))
        temperature = float(kwargs.pop("temperature", 1.0 if do_sample else 0.0))
        if not do_sample:
            temperature = 0.0
        top_p = kwargs.pop("top_p", None)
        top_k = kwargs.pop("top_k", None)
        top_p = None if top_p is None else float(top_p)
        for name, value in (("temperature", temperature), ("top_p", top_p)):
            if value is not None and not math.isfinite(value):
                raise InputError(
                    f"{name} must be a finite number, got {value}", column="gen_kwargs"
                )
        return cls(
            until=tuple(str(s) for s in until if s),
            max_gen_toks=max_gen_toks,
            temperature=temperature,
            top_p=top_p,
            top_k=None if top_k is None else int(top_k),
            extra=kwargs,
        )

    def cache_key(self) -> tuple[Any, ...]:
        """Requests with equal keys can share a batch."""
        return (self.until, self.max_gen_toks, self.temperature, self.top_p, self.top_k)


def truncate_at_stop(text: str, until: tuple[str, ...]) -> tuple[str, bool]:
    """Cut ``text`` before the earliest stop string; say whether one was found."""
    cut = min((i for i in (text.find(s) for s in until) if i >= 0), default=-1)
    return (text, False) if cut < 0 else (text[:cut], True)


def reject_unknown_args(backend: str, unknown: Mapping[str, Any], known: tuple[str, ...]) -> None:
    """A misspelt model argument is an error naming it, not a silently ignored setting."""
    if unknown:
        names = ", ".join(sorted(unknown))
        raise InputError(
            f"{backend}: unknown model argument(s) {names}; valid: {', '.join(sorted(known))}",
            column="model_args",
        )


def parse_batch_size(value: Any, default: int = 8) -> int:
    """lm-eval's ``--batch_size`` (an int, or ``auto``/``auto:N``, which we map to ``default``)."""
    if value is None or str(value).startswith("auto"):
        return default
    try:
        size = int(value)
    except ValueError:
        raise InputError(f"batch_size must be an integer or 'auto', got {value!r}") from None
    if size < 1:
        raise InputError(f"batch_size must be >= 1, got {size}")
    return size
