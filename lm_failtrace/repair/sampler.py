"""A specialist sampler that can consult its ancestor token by token (needs torch).

Every repair operator of method.md section 6 is a plain temperature sample with, at most, one
change at one step or from one step on. :class:`RowPlan` says which, per row, and
:class:`LockstepSampler` runs a batch of rows of one prompt through the specialist (and, when a row
needs it, the ancestor) with KV caches, so the operators share one generation loop and differ only
in their plans. Each row has its own seeded generator, so a row's sample does not depend on what
else is in the batch.

Steps are 0-based positions among the generated tokens. At a *fire* step the token is first
sampled as usual; the junction detector evaluates ``j_t`` (method.md section 2) for that sampled
token, and if ``t >= min_step`` and ``j_t > threshold`` the sampled token is replaced:

- ``sparse``: by the argmax of ``alpha * z_S + (1 - alpha) * z_A`` (one token), then plain sampling;
- ``random``: the same one-token steer at the fixed ``position`` (no detector);
- ``local_temp``: by a fresh specialist sample at ``local_temperature``, then plain sampling;
- ``dense``: by the mixture argmax, and every later token too.

A row whose detector never fires is a plain sample (the operator then spent only a retry).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from lm_failtrace.record.backends.generation import truncate_at_stop
from lm_failtrace.record.logits import TOP_K, token_quantities
from lm_failtrace.record.scoring import topk_logprobs

Mode = Literal["plain", "sparse", "random", "local_temp", "dense"]
_DETECTOR_MODES = ("sparse", "local_temp", "dense")


@dataclass(frozen=True)
class RowPlan:
    """How to generate one row.

    Args:
        seed: seed of this row's own generator.
        temperature: sampling temperature of the specialist.
        max_new_tokens: generation budget.
        mode: the intervention (see the module docstring).
        threshold: detector threshold in raw ``j`` units (detector modes).
        position: the steered step (``random`` mode).
        local_temperature: the lifted temperature of the fire step (``local_temp`` mode).
        alpha: specialist weight in the logit mixture.
        min_step: the first step at which the detector may fire.
    """

    seed: int
    temperature: float = 0.6
    max_new_tokens: int = 96
    mode: Mode = "plain"
    threshold: float | None = None
    position: int | None = None
    local_temperature: float | None = None
    alpha: float = 0.7
    min_step: int = 20

    @property
    def needs_ancestor(self) -> bool:
        return self.mode != "plain"


@dataclass
class Generation:
    """One generated row: text (cut before any stop string), token count, why it stopped."""

    text: str
    token_ids: list[int]
    finish_reason: str
    fired_at: int | None


class LockstepSampler:
    """Generate rows of one prompt with optional ancestor-guided interventions.

    Args:
        specialist: a causal LM (transformers ``PreTrainedModel``) in eval mode.
        tokenizer: the shared tokenizer.
        ancestor: the ancestor causal LM, required by any non-plain plan.
        stop: stop strings; generation of a row ends when its text contains one.
        top_k: top-K used by the detector's ``j_t``.
    """

    def __init__(
        self,
        specialist: Any,
        tokenizer: Any,
        ancestor: Any = None,
        stop: Sequence[str] = ("\n",),
        top_k: int = TOP_K,
    ) -> None:
        self.specialist = specialist
        self.tokenizer = tokenizer
        self.ancestor = ancestor
        self.stop = tuple(stop)
        self.top_k = top_k

    def generate(self, prompt: str, plans: Sequence[RowPlan]) -> list[Generation]:
        """Generate one row per plan from ``prompt``."""
        import torch

        if any(p.needs_ancestor for p in plans) and self.ancestor is None:
            raise ValueError("steering and detector plans need the ancestor model")
        use_anc = any(p.needs_ancestor for p in plans)
        prompt_ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        n = len(plans)
        gens = [torch.Generator().manual_seed(int(p.seed)) for p in plans]
        tokens: list[list[int]] = [[] for _ in plans]
        done = [False] * n
        finish = ["length"] * n
        fired: list[int | None] = [None] * n
        texts = [""] * n
        eos = self.tokenizer.eos_token_id
        ids = torch.tensor([prompt_ids] * n, dtype=torch.long)
        past_s = past_a = None
        horizon = max(p.max_new_tokens for p in plans)
        with torch.no_grad():
            for step in range(horizon):
                out_s = self.specialist(input_ids=ids, cache=past_s, use_cache=True)
                past_s, logits_s = out_s.cache, out_s.logits[:, -1, :].float()
                logits_a = None
                if use_anc:
                    out_a = self.ancestor(input_ids=ids, cache=past_a, use_cache=True)
                    past_a, logits_a = out_a.cache, out_a.logits[:, -1, :].float()
                chosen = self._step(step, plans, gens, logits_s, logits_a, done, fired)
                for i, tok in enumerate(chosen):
                    if done[i]:
                        continue
                    tokens[i].append(tok)
                    text, stopped = truncate_at_stop(self.tokenizer.decode(tokens[i]), self.stop)
                    texts[i] = text
                    if stopped or (eos is not None and tok == eos):
                        done[i], finish[i] = True, "stop"
                    elif len(tokens[i]) >= plans[i].max_new_tokens:
                        done[i], finish[i] = True, "length"
                if all(done):
                    break
                ids = torch.tensor([[t] for t in chosen], dtype=torch.long)
        return [Generation(texts[i], tokens[i], finish[i], fired[i]) for i in range(n)]

    def _step(
        self,
        step: int,
        plans: Sequence[RowPlan],
        gens: list[Any],
        logits_s: Any,
        logits_a: Any,
        done: list[bool],
        fired: list[int | None],
    ) -> list[int]:
        """Choose each row's token at ``step``, applying its plan's intervention."""
        import torch

        chosen: list[int] = []
        for i, plan in enumerate(plans):
            probs = torch.softmax(logits_s[i] / plan.temperature, dim=-1)
            chosen.append(int(torch.multinomial(probs, 1, generator=gens[i])))
        fire = self._fires(step, plans, chosen, logits_s, logits_a, done, fired)
        for i in np.flatnonzero(fire):
            plan = plans[i]
            if fired[i] is None:
                fired[i] = step
            if plan.mode == "local_temp":
                probs = torch.softmax(logits_s[i] / plan.local_temperature, dim=-1)
                chosen[i] = int(torch.multinomial(probs, 1, generator=gens[i]))
            else:
                mix = plan.alpha * logits_s[i] + (1 - plan.alpha) * logits_a[i]
                chosen[i] = int(torch.argmax(mix))
        return chosen

    def _fires(
        self,
        step: int,
        plans: Sequence[RowPlan],
        chosen: list[int],
        logits_s: Any,
        logits_a: Any,
        done: list[bool],
        fired: list[int | None],
    ) -> np.ndarray:
        """Which rows intervene at ``step`` (dense rows keep intervening once fired)."""
        fire = np.zeros(len(plans), dtype=bool)
        candidates = []
        for i, plan in enumerate(plans):
            if done[i]:
                continue
            if plan.mode == "random":
                fire[i] = step == plan.position
            elif plan.mode == "dense" and fired[i] is not None:
                fire[i] = True
            elif (
                plan.mode in _DETECTOR_MODES
                and fired[i] is None
                and step >= plan.min_step
                and plan.threshold is not None
            ):
                candidates.append(i)
        by_temperature: dict[float, list[int]] = {}
        for i in candidates:
            by_temperature.setdefault(plans[i].temperature, []).append(i)
        for temperature, group in by_temperature.items():
            rows = np.array(group)
            s_ids, s_lp = topk_logprobs(logits_s[rows], self.top_k)
            a_ids, a_lp = topk_logprobs(logits_a[rows], self.top_k)
            taken = np.array([chosen[i] for i in group])
            j = token_quantities(taken, s_ids, s_lp, a_ids, a_lp, temperature).j
            for k, i in enumerate(group):
                fire[i] = j[k] > plans[i].threshold
        return fire
