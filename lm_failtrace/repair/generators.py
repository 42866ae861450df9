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
    """Attempts from OpenAI-compatible servers (``failtrace-local-completions``).

    Black-box (``retry``, ``budget``, ``temp_shift``) with the specialist server alone; every
    operator when the run was recorded with ``ancestor_url=`` (or it is given to repair), through
    :class:`~lm_failtrace.repair.server_steering.ServerSteering`.
    """

    def __init__(self, model_args: Mapping[str, Any]) -> None:
        from lm_failtrace.record.backends.completions import FailtraceLocalCompletions
        from lm_failtrace.repair.server_steering import ServerSteering

        args = {k: v for k, v in model_args.items() if k != "journal"}  # recording's only
        self.backend = FailtraceLocalCompletions(**args)
        self.steers = self.backend.ancestor is not None
        self.steering = ServerSteering(
            self.backend.server,
            self.backend.ancestor,
            self.backend.logit_top_k,
            self.backend.num_concurrent,
        )

    def generate(
        self, prompt: str, plans: Sequence[RowPlan], until: Sequence[str]
    ) -> list[Attempt]:
        # Black-box: any server, text prompts as recording sent them; steering: token ids.
        source = self.backend.prompt_ids(prompt) if self.steers else prompt
        return self.steering.run(source, plans, until)

    def junction_scores(self, prompt: str, texts: Sequence[str]) -> np.ndarray:
        """Teacher-forced ``j`` of recorded completions, both servers' top-K in one request each."""
        from lm_failtrace.record.logits import TEMPERATURE, token_quantities

        b = self.backend
        if b.ancestor is None:
            raise InputError(
                "steering operators through a completions server need the ancestor's server: "
                "record with ancestor_url=... or pass it to repair as a model argument",
                column="ancestor_url",
            )
        prompt_ids = b.prompt_ids(prompt)
        completions = [b.server.tokenize(t) for t in texts]
        sequences = [prompt_ids + c for c in completions]
        starts = [len(prompt_ids)] * len(completions)
        spec = b.server.score(sequences, starts, b.logit_top_k)
        anc = b.ancestor.score(sequences, starts, b.logit_top_k)
        j = [
            token_quantities(
                np.asarray(c, dtype=np.int64), s.ids, s.logprobs, a.ids, a.logprobs, TEMPERATURE
            ).j
            for c, s, a in zip(completions, spec, anc, strict=True)
        ]
        return np.concatenate(j) if j else np.zeros(0)


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
