"""Per-rollout logit features while ``failtrace-hf`` generates (docs/method.md 2; needs torch).

With ``ancestor=PATH`` the backend attaches an :class:`AncestorObserver` to its sampling loop: it
keeps the specialist's top-K log-probs at every generated step (from the logits the loop already
computed, so recording costs no extra specialist pass), then scores all rows' generated sequences
with the ancestor in one batched forward pass, and returns each rollout's ``spread``,
``concentration`` and ``logit_dispersion``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lm_failtrace.record.logits import TEMPERATURE, TOP_K, logit_features
from lm_failtrace.record.scoring import completion_topk, topk_logprobs


class AncestorObserver:
    """A :class:`~lm_failtrace.record.backends.decoding.GenerationObserver` for logit features.

    Args:
        ancestor: the ancestor causal LM (same tokenizer as the specialist).
        top_k: log-probs kept per position.
        temperature: T of docs/method.md section 2 (0.6, whatever the task samples at).
    """

    def __init__(self, ancestor: Any, top_k: int = TOP_K, temperature: float = TEMPERATURE) -> None:
        self.ancestor = ancestor
        self.top_k = top_k
        self.temperature = temperature
        self._ids: list[np.ndarray] = []
        self._logprobs: list[np.ndarray] = []

    def on_step(self, step: int, logits: Any, tokens: Any, active: Any) -> None:
        ids, logprobs = topk_logprobs(logits, self.top_k)
        self._ids.append(ids)
        self._logprobs.append(logprobs)

    def finish(
        self, prompts: Sequence[Sequence[int]], generated: Sequence[Sequence[int]]
    ) -> list[dict[str, Any]]:
        spec_ids = np.stack(self._ids, axis=1)  # (B, steps, K)
        spec_lp = np.stack(self._logprobs, axis=1)
        ancestor = completion_topk(self.ancestor, prompts, generated, self.top_k)
        out = []
        for row, (tokens, (a_ids, a_lp)) in enumerate(zip(generated, ancestor, strict=True)):
            n = len(tokens)
            taken = np.asarray(tokens, dtype=np.int64)
            out.append(
                logit_features(
                    taken, spec_ids[row, :n], spec_lp[row, :n], a_ids, a_lp, self.temperature
                )
            )
        return out
