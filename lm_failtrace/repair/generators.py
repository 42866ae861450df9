"""Where repair attempts come from: the recorded run's own backend, reloaded.

``failtrace repair`` applies operators "with the same model backend" that recorded the run. An
:class:`AttemptGenerator` generates the attempts of one unit from its prompt; white-box generators
(Hugging Face models with an ancestor) also score recorded rollouts for the junction detector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from lm_failtrace.errors import InputError
from lm_failtrace.repair.steering import Attempt, RowPlan


class AttemptGenerator(Protocol):
    """Generate attempts of one prompt; ``steers`` says whether ancestor plans are possible."""

    steers: bool

    def generate(
        self, prompt: str, plans: Sequence[RowPlan], until: Sequence[str]
    ) -> list[Attempt]:
        """One attempt per plan."""

    def junction_scores(self, prompt: str, texts: Sequence[str]) -> np.ndarray:
        """All per-token ``j`` values of the given completions, pooled (white-box only)."""


class HFAttempts:
    """Attempts from ``failtrace-hf`` models (all operators when an ancestor is loaded)."""

    def __init__(self, model_args: Mapping[str, Any]) -> None:
        from lm_failtrace.record.backends.hf import FailtraceHF

        self.backend = FailtraceHF(**dict(model_args))
        self.steers = self.backend.ancestor is not None

    def _prompt_ids(self, prompt: str) -> list[int]:
        return self.backend.encode_prompt(prompt, 1)

    def generate(
        self, prompt: str, plans: Sequence[RowPlan], until: Sequence[str]
    ) -> list[Attempt]:
        from lm_failtrace.repair.steering import run_plans

        b = self.backend
        return run_plans(
            b.model, b.tokenizer, b.vocab, self._prompt_ids(prompt), plans, until, b.ancestor
        )

    def junction_scores(self, prompt: str, texts: Sequence[str]) -> np.ndarray:
        from lm_failtrace.record.scoring import score_completions

        b = self.backend
        completions = [b.tokenizer.encode(t, add_special_tokens=False) for t in texts]
        scored = score_completions(
            b.model, b.ancestor, self._prompt_ids(prompt), completions, temperature=0.6
        )
        return np.concatenate([q.j for q in scored]) if scored else np.zeros(0)


class CompletionsAttempts:
    """Black-box attempts from an OpenAI-compatible server (``failtrace-local-completions``)."""

    steers = False

    def __init__(self, model_args: Mapping[str, Any]) -> None:
        from lm_failtrace.record.backends.completions import FailtraceLocalCompletions

        self.backend = FailtraceLocalCompletions(**dict(model_args))

    def generate(
        self, prompt: str, plans: Sequence[RowPlan], until: Sequence[str]
    ) -> list[Attempt]:
        from lm_failtrace.record.backends.generation import GenerationSettings

        attempts = []
        for plan in plans:
            settings = GenerationSettings(tuple(until), plan.max_new_tokens, plan.temperature)
            text, tokens, finish = self.backend.complete(prompt, settings, plan.seed)
            attempts.append(Attempt(plan, text, tokens, finish or "stop"))
        return attempts

    def junction_scores(self, prompt: str, texts: Sequence[str]) -> np.ndarray:
        raise InputError(
            "a completions server gives no logits: steering operators need failtrace-hf"
        )


#: lm-eval model name -> generator class.
GENERATORS: dict[str, type] = {
    "failtrace-hf": HFAttempts,
    "failtrace-local-completions": CompletionsAttempts,
}


def attempt_generator(model: str, model_args: Mapping[str, Any]) -> AttemptGenerator:
    """The generator for a recorded run's backend (``config.model`` of lm-eval's results)."""
    if model not in GENERATORS:
        raise InputError(
            f"repair needs the run's backend to generate attempts; {model!r} is not one of "
            f"{', '.join(GENERATORS)} (record with `failtrace eval --model failtrace-hf ...`)",
            column="model",
        )
    return GENERATORS[model](model_args)
