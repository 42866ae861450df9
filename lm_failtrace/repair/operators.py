"""The repair operators of docs/method.md section 6, as registered plan builders.

An operator turns one failure unit and one trial into the plans of that trial's attempts (a trial
succeeds when any attempt is correct). New operators are one decorated function; the CLI and the
configuration find them by name in :data:`OPERATORS`.

Attempts are paired across operators: attempt ``a`` of trial ``r`` of a unit uses the same seed
under every operator (common random numbers). Up to the step where an operator intervenes, its
sample is token for token the ``retry`` sample, so the difference between two operators' rescue
rates measures their interventions, not sampling luck.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace

from lm_failtrace.record.backends.seeds import DEFAULT_BASE_SEED, rollout_seed
from lm_failtrace.repair.steering import RowPlan

LOCAL_TEMPERATURES: tuple[float, ...] = (1.0, 1.5, 2.0)
BUDGET_FACTOR = 4
SHIFTED_TEMPERATURE = 1.0
MIN_STEER_STEP = 20


@dataclass(frozen=True)
class UnitContext:
    """What every operator needs to know about the unit it repairs.

    Args:
        problem_id: the unit's stable problem id (seeds derive from it).
        threshold: junction-detector threshold in raw ``j`` units (0.99 quantile over the unit's
            recorded failed rollouts); None when no ancestor was given.
        temperature: the task's sampling temperature.
        max_new_tokens: the task's generation budget.
        base_seed: the repair run's base seed.
    """

    problem_id: str
    threshold: float | None
    temperature: float = 0.6
    max_new_tokens: int = 128
    base_seed: int = DEFAULT_BASE_SEED

    def base_plan(self, trial: int, attempt: int, attempts: int) -> RowPlan:
        """The plain sample of this attempt: what ``retry`` runs and others start from."""
        seed = rollout_seed(self.base_seed, "repair", self.problem_id, trial * attempts + attempt)  # type: ignore[arg-type]
        return RowPlan(
            seed=seed,
            temperature=self.temperature,
            max_new_tokens=self.max_new_tokens,
            min_step=MIN_STEER_STEP,
        )


PlanBuilder = Callable[[UnitContext, RowPlan, int], RowPlan]


@dataclass(frozen=True)
class Operator:
    """A registered operator: its name, whether it needs the ancestor, and its plan builder."""

    name: str
    needs_ancestor: bool
    build: PlanBuilder

    def plans(self, ctx: UnitContext, trial: int, attempts: int) -> list[RowPlan]:
        """The plans of one trial's ``attempts`` attempts."""
        return [self.build(ctx, ctx.base_plan(trial, a, attempts), a) for a in range(attempts)]


OPERATORS: dict[str, Operator] = {}


def operator(name: str, *, needs_ancestor: bool) -> Callable[[PlanBuilder], PlanBuilder]:
    """Register a plan builder ``(ctx, base_plan, attempt) -> plan`` under ``name``."""

    def register(build: PlanBuilder) -> PlanBuilder:
        OPERATORS[name] = Operator(name, needs_ancestor, build)
        return build

    return register


def _detector(ctx: UnitContext, plan: RowPlan, mode: str) -> RowPlan:
    if ctx.threshold is None:
        raise ValueError(f"operator needs a detector threshold (no ancestor?): {mode}")
    return replace(plan, mode=mode, threshold=ctx.threshold)  # type: ignore[arg-type]


@operator("retry", needs_ancestor=False)
def _retry(ctx: UnitContext, plan: RowPlan, attempt: int) -> RowPlan:
    """A plain sample at the task's temperature."""
    return plan


@operator("sparse_steer", needs_ancestor=True)
def _sparse_steer(ctx: UnitContext, plan: RowPlan, attempt: int) -> RowPlan:
    """One mixture-argmax token where the junction detector first fires (t >= 20)."""
    return _detector(ctx, plan, "sparse")


@operator("sparse_steer_random", needs_ancestor=True)
def _sparse_steer_random(ctx: UnitContext, plan: RowPlan, attempt: int) -> RowPlan:
    """The same one-token steer at a uniform step in [20, max(21, L/2)] (position control)."""
    high = max(MIN_STEER_STEP + 1, ctx.max_new_tokens // 2)
    position = random.Random(plan.seed).randint(MIN_STEER_STEP, high)
    return replace(plan, mode="random", position=position)


@operator("local_temp", needs_ancestor=True)
def _local_temp(ctx: UnitContext, plan: RowPlan, attempt: int) -> RowPlan:
    """At the detector's fire step, sample that token at T_local (1.0, 1.5, 2.0 by attempt)."""
    lifted = LOCAL_TEMPERATURES[attempt % len(LOCAL_TEMPERATURES)]
    return replace(_detector(ctx, plan, "local_temp"), local_temperature=lifted)


@operator("dense_steer", needs_ancestor=True)
def _dense_steer(ctx: UnitContext, plan: RowPlan, attempt: int) -> RowPlan:
    """From the detector's fire step on, every token is the mixture argmax."""
    return _detector(ctx, plan, "dense")


@operator("budget", needs_ancestor=False)
def _budget(ctx: UnitContext, plan: RowPlan, attempt: int) -> RowPlan:
    """The same sample with four times the token budget."""
    return replace(plan, max_new_tokens=ctx.max_new_tokens * BUDGET_FACTOR)


@operator("temp_shift", needs_ancestor=False)
def _temp_shift(ctx: UnitContext, plan: RowPlan, attempt: int) -> RowPlan:
    """A plain sample at T = 1.0."""
    return replace(plan, temperature=SHIFTED_TEMPERATURE)
