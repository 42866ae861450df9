"""A completion string that carries its rollout's metadata through lm-eval.

lm-eval keeps whatever ``generate_until`` returns as the response object and hands it, untouched,
to filters and ``process_results`` (the samples log stores only its text). Returning a ``str``
subclass is therefore the one channel through which a backend can tell a task the seed, repeat
index, token count and finish reason of each rollout without changing lm-eval.
"""

from __future__ import annotations

from typing import Any


class RolloutText(str):
    """The completion text plus ``meta``, a dict of what the backend knows about the rollout.

    ``meta`` keys (all optional; a missing key means unknown, never guessed):
        doc_id: lm-eval's doc id of the request.
        seed: the sampling seed used for this repeat.
        repeat: 0-based index among the doc's repeats, by order of appearance in lm-eval's request
            list.
        generated_tokens: tokens the model generated (stop token included, if any).
        finish_reason: ``"stop"`` (stop sequence or end of sequence) or ``"length"`` (hit the
            token limit).
        spread, concentration, logit_dispersion: per-rollout logit aggregates
            (docs/method.md section 2), when an ancestor model was scored.

    Operations that build a new string (slicing, ``strip``, concatenation) return plain ``str`` and
    drop the metadata; read ``meta`` from the object the backend returned.
    """

    meta: dict[str, Any]

    def __new__(cls, text: str, meta: dict[str, Any] | None = None) -> RolloutText:
        obj = super().__new__(cls, text)
        obj.meta = dict(meta or {})
        return obj

    def __reduce__(self) -> tuple[Any, ...]:
        # Survive pickling (lm-eval's request cache and multiprocessing pickle responses).
        return (RolloutText, (str(self), self.meta))


def rollout_meta(response: object) -> dict[str, Any]:
    """The metadata of ``response``, or ``{}`` for a plain string from a stock backend."""
    meta = getattr(response, "meta", None)
    return dict(meta) if isinstance(meta, dict) else {}
