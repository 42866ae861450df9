"""Per-row interventions on the shared sampling loop (needs torch).

Every repair operator of docs/method.md section 6 is a plain temperature sample with, at most, one
change at one step or from one step on. A :class:`RowPlan` says which, per row; :class:`Steering`
applies the plans inside :func:`lm_failtrace.record.backends.decoding.sample_batch` (the loop the
``failtrace-hf`` backend records with), with the ancestor as the loop's lockstep companion, so
recording and repair generate with the same code.

Steps are 0-based positions among the generated tokens. At a *fire* step the token is first
sampled as usual; the junction detector evaluates ``j_t`` (docs/method.md section 2) for that
sampled token, and if ``t >= min_step`` and ``j_t > threshold`` the sampled token is replaced:

- ``sparse``: by the argmax of ``alpha * z_S + (1 - alpha) * z_A`` (one token), then plain sampling;
- ``random``: the same one-token steer at the fixed ``position`` (no detector);
- ``local_temp``: by the specialist's sample at ``local_temperature`` drawn with the step's own
  uniform (a coupled draw: only the temperature differs), then plain sampling;
- ``dense``: by the mixture argmax, and every later token too.

A row whose detector never fires is a plain sample (the operator then spent only a retry).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from lm_failtrace.record.logits import TOP_K, token_quantities

Mode = Literal["plain", "sparse", "random", "local_temp", "dense"]
_DETECTOR_MODES = ("sparse", "local_temp", "dense")


@dataclass(frozen=True)
class RowPlan:
    """How to generate one row.

    Args:
        seed: the row's sampling seed (its uniforms; equal seeds = equal samples until a change).
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
    max_new_tokens: int = 128
    mode: Mode = "plain"
    threshold: float | None = None
    position: int | None = None
    local_temperature: float | None = None
    alpha: float = 0.7
    min_step: int = 20

    @property
    def needs_ancestor(self) -> bool:
        return self.mode != "plain"


class Steering:
    """A :class:`~lm_failtrace.record.backends.decoding.TokenIntervention` applying row plans.

    Attributes:
        fired_at_: per row, the first step at which it intervened (None if never).
    """

    def __init__(self, plans: Sequence[RowPlan], top_k: int = TOP_K) -> None:
        self.plans = list(plans)
        self.top_k = top_k
        self.fired_at_: list[int | None] = [None] * len(self.plans)

    def adjust(
        self,
        step: int,
        logits: Any,
        companion_logits: Any,
        tokens: Any,
        uniforms: Any,
        active: Any,
    ) -> Any:
        from lm_failtrace.record.backends.decoding import choose_tokens
        from lm_failtrace.record.backends.generation import GenerationSettings

        fire = self._fires(step, logits, companion_logits, tokens, active)
        if not fire.any():
            return tokens
        tokens = tokens.clone()
        for i in np.flatnonzero(fire):
            plan = self.plans[i]
            if self.fired_at_[i] is None:
                self.fired_at_[i] = step
            if plan.mode == "local_temp":
                lifted = GenerationSettings((), 1, float(plan.local_temperature or 1.0))
                u = None if uniforms is None else uniforms[i : i + 1]
                tokens[i] = choose_tokens(logits[i : i + 1], u, lifted)[0]
            else:
                mix = (
                    plan.alpha * logits[i].float() + (1 - plan.alpha) * companion_logits[i].float()
                )
                tokens[i] = mix.argmax()
        return tokens

    def _fires(
        self, step: int, logits: Any, companion_logits: Any, tokens: Any, active: Any
    ) -> np.ndarray:
        """Which rows intervene at ``step`` (dense rows keep intervening once fired)."""
        from lm_failtrace.record.scoring import topk_logprobs

        fire = np.zeros(len(self.plans), dtype=bool)
        by_temperature: dict[float, list[int]] = {}
        for i, plan in enumerate(self.plans):
            if not bool(active[i]):
                continue
            if plan.mode == "random":
                fire[i] = step == plan.position
            elif plan.mode == "dense" and self.fired_at_[i] is not None:
                fire[i] = True
            elif (
                plan.mode in _DETECTOR_MODES
                and self.fired_at_[i] is None
                and step >= plan.min_step
                and plan.threshold is not None
            ):
                by_temperature.setdefault(plan.temperature, []).append(i)
        for temperature, group in by_temperature.items():
            rows = np.array(group)
            s_ids, s_lp = topk_logprobs(logits[rows], self.top_k)
            a_ids, a_lp = topk_logprobs(companion_logits[rows], self.top_k)
            taken = tokens[rows].cpu().numpy()
            j = token_quantities(taken, s_ids, s_lp, a_ids, a_lp, temperature).j
            for k, i in enumerate(group):
                fire[i] = j[k] > self.plans[i].threshold
        return fire


@dataclass
class Attempt:
    """One generated row of a plan."""

    plan: RowPlan
    text: str
    generated_tokens: int | None
    finish_reason: str
    fired_at: int | None = None
    token_ids: list[int] = field(default_factory=list)


def run_plans(
    model: Any,
    tokenizer: Any,
    vocab: Any,
    prompt_ids: Sequence[int],
    plans: Sequence[RowPlan],
    until: Sequence[str],
    ancestor: Any = None,
) -> list[Attempt]:
    """Generate one row per plan from one prompt, batching rows with equal sampling settings."""
    from lm_failtrace.record.backends.decoding import sample_batch
    from lm_failtrace.record.backends.generation import GenerationSettings

    if ancestor is None and any(p.needs_ancestor for p in plans):
        raise ValueError("steering and detector plans need the ancestor model")
    groups: dict[tuple[float, int], list[int]] = {}
    for i, plan in enumerate(plans):
        groups.setdefault((plan.temperature, plan.max_new_tokens), []).append(i)
    attempts: list[Attempt | None] = [None] * len(plans)
    for (temperature, max_new_tokens), rows in groups.items():
        group = [plans[i] for i in rows]
        settings = GenerationSettings(tuple(until), max_new_tokens, temperature)
        steering = Steering(group) if any(p.needs_ancestor for p in group) else None
        rollouts = sample_batch(
            model,
            tokenizer,
            [list(prompt_ids)] * len(group),
            [p.seed for p in group],
            settings,
            vocab,
            intervention=steering,
            companion=ancestor if steering is not None else None,
        )
        for k, (i, rollout) in enumerate(zip(rows, rollouts, strict=True)):
            fired = None if steering is None else steering.fired_at_[k]
            attempts[i] = Attempt(
                plans[i],
                rollout.text,
                rollout.generated_tokens,
                rollout.finish_reason,
                fired,
                rollout.token_ids,
            )
    return attempts  # type: ignore[return-value]
