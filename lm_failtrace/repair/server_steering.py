"""The repair operators through two completions servers (specialist and ancestor).

:mod:`lm_failtrace.repair.steering` changes tokens inside ``failtrace-hf``'s sampling loop; a
server gives no such hook, so every operator is rebuilt from requests on token-id prompts (nothing
is re-tokenised), with the attempt's seed as the server's ``seed`` (common random numbers: every
operator's attempt starts as the ``retry`` sample of the same seed):

- plain plans (``retry``, ``budget``, ``temp_shift``): one sampling request;
- detector plans (``sparse_steer``, ``local_temp``, ``dense_steer``): the plain sample with the
  specialist's top-K at every step, then one ancestor request scoring it (prompt log-probs). The
  junction statistic ``j_t`` of the sampled tokens is exactly what the in-loop detector computes
  step by step (it depends on tokens up to ``t`` only), so the fire step ``t*`` is the first
  ``t >= min_step`` with ``j_t > threshold``; a sample that never fires is the attempt;
- ``sparse_steer_random``: the same at the plan's fixed position;
- the fire-step token is replaced by the argmax of ``alpha * log p_S + (1 - alpha) * log p_A``
  over the union of both top-K lists (``sparse``, ``random``, ``dense``; a token missing from one
  list gets that list's smallest log-prob, an upper bound, so the pick is exact whenever the
  winner is in both), or redrawn from the specialist's top-K at ``T_local`` (``local_temp``);
- ``sparse``/``random``/``local_temp`` then continue with one sampling request from the prefix;
  ``dense`` steps both servers one token at a time (per token two one-token requests and, with
  stop strings, one ``/detokenize`` of the last few tokens; at most ``max_new_tokens - t*``
  tokens; prefix caching makes each request cost about one token of compute).

Where this differs from the HF loop, and why it cannot matter to a rescue rate: after the steered
token the continuation draws fresh uniforms from the same seed (a server's random stream cannot
be resumed mid-sample), and ``local_temp``'s redraw uses a uniform derived from the seed and step
instead of the step's own. A steered token ends the row when it completes a stop string or is an
end-of-sequence token, known when a server reported it (a greedy one-token request that finished
with ``stop``: see :attr:`ServerSteering.eos_ids_`).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from lm_failtrace.record.backends.generation import GenerationSettings, truncate_at_stop
from lm_failtrace.record.backends.server import Completion, CompletionsServer, TopK
from lm_failtrace.record.logits import token_quantities
from lm_failtrace.repair.steering import Attempt, RowPlan


def _row(top: TopK, position: int) -> dict[int, float]:
    """One position's ``{token id: log-prob}`` (padding dropped)."""
    ids, values = top.ids[position], top.logprobs[position]
    return {int(i): float(v) for i, v in zip(ids, values, strict=True) if i >= 0}


def mixture_argmax(specialist: dict[int, float], ancestor: dict[int, float], alpha: float) -> int:
    """The argmax of ``alpha * log p_S + (1 - alpha) * log p_A`` over both top-K lists.

    Log-probs and logits differ by one constant per model, so this is the HF loop's logit
    mixture's argmax whenever the winner is in both lists (see the module docstring). Ties go to
    the smaller id, as ``argmax`` over the vocabulary does.
    """
    floor_s, floor_a = min(specialist.values()), min(ancestor.values())

    def score(token: int) -> tuple[float, int]:
        mixed = alpha * specialist.get(token, floor_s) + (1 - alpha) * ancestor.get(token, floor_a)
        return mixed, -token

    return max(specialist.keys() | ancestor.keys(), key=score)


def temperature_redraw(specialist: dict[int, float], temperature: float, uniform: float) -> int:
    """An inverse-CDF draw from the specialist's top-K at ``temperature`` (ids in vocab order)."""
    ids = np.array(sorted(specialist))
    scaled = np.array([specialist[i] for i in ids]) / temperature
    probs = np.exp(scaled - scaled.max())
    cdf = np.cumsum(probs / probs.sum())
    return int(ids[min(int(np.searchsorted(cdf, uniform)), len(ids) - 1)])


def _unsteered(plan: RowPlan, done: Completion, fired_at: int | None = None) -> Attempt:
    """A server's sample taken as the attempt as it is."""
    return Attempt(plan, done.text, done.completion_tokens, done.finish_reason or "stop", fired_at)


class ServerSteering:
    """Run :class:`~lm_failtrace.repair.steering.RowPlan` s against two servers.

    Args:
        specialist, ancestor: the servers (``ancestor`` None: plain plans only).
        top_k: log-probs per token asked of both.
        num_concurrent: attempts generated at once.

    Attributes:
        eos_ids_: end-of-sequence ids learned from the servers' answers so far.
    """

    def __init__(
        self,
        specialist: CompletionsServer,
        ancestor: CompletionsServer | None,
        top_k: int,
        num_concurrent: int = 1,
    ) -> None:
        self.specialist = specialist
        self.ancestor = ancestor
        self.top_k = top_k
        self.num_concurrent = max(1, num_concurrent)
        self.eos_ids_: set[int] = set()

    def run(
        self, prompt: str | Sequence[int], plans: Sequence[RowPlan], until: Sequence[str]
    ) -> list[Attempt]:
        """One attempt per plan, ``num_concurrent`` at a time.

        Args:
            prompt: token ids; or text, as a black-box server takes it (plain plans only).
        """
        if any(p.needs_ancestor for p in plans) and (
            self.ancestor is None or isinstance(prompt, str)
        ):
            raise ValueError("steering and detector plans need the ancestor server and token ids")
        source = prompt if isinstance(prompt, str) else list(prompt)
        with ThreadPoolExecutor(self.num_concurrent) as pool:
            return list(pool.map(lambda p: self.attempt(source, p, tuple(until)), plans))

    def attempt(self, prompt: str | list[int], plan: RowPlan, until: tuple[str, ...]) -> Attempt:
        """One plan's attempt (module docstring); steered plans need a token-id ``prompt``."""
        settings = GenerationSettings(until, plan.max_new_tokens, plan.temperature)
        if not plan.needs_ancestor:
            return _unsteered(plan, self.specialist.complete(prompt, settings, plan.seed))
        assert isinstance(prompt, list)
        base = self.specialist.complete(prompt, settings, plan.seed, logprobs=self.top_k)
        assert self.ancestor is not None and base.top is not None and base.token_ids is not None
        (anc,) = self.ancestor.score([prompt + base.token_ids], [len(prompt)], self.top_k)
        step = self._fire_step(plan, base, anc)
        if step is None:
            return _unsteered(plan, base)
        spec_row, anc_row = _row(base.top, step), _row(anc, step)
        if plan.mode == "local_temp":
            uniform = float(np.random.default_rng([plan.seed, step]).random())
            token = temperature_redraw(spec_row, float(plan.local_temperature or 1.0), uniform)
        else:
            token = mixture_argmax(spec_row, anc_row, plan.alpha)
        if token == base.token_ids[step] and plan.mode != "dense":
            # the same token: the sample goes on exactly as the plain one did
            return _unsteered(plan, base, step)
        return self._finish(prompt, plan, until, [*base.token_ids[:step], token], step)

    def _fire_step(self, plan: RowPlan, base: Completion, anc: TopK) -> int | None:
        assert base.top is not None and base.token_ids is not None
        n = len(base.token_ids)
        if plan.mode == "random":
            return plan.position if plan.position is not None and plan.position < n else None
        taken = np.asarray(base.token_ids, dtype=np.int64)
        j = token_quantities(
            taken, base.top.ids, base.top.logprobs, anc.ids, anc.logprobs, plan.temperature
        ).j
        fired = np.flatnonzero((np.arange(n) >= plan.min_step) & (j > float(plan.threshold or 0)))
        return int(fired[0]) if fired.size else None

    def _ends(self, tokens: list[int], until: tuple[str, ...]) -> bool:
        """Whether the last token ends the row (end of sequence, or a completed stop string)."""
        if tokens[-1] in self.eos_ids_:
            return True
        if not until:
            return False
        tail = max(len(s) for s in until) + 4  # a token decodes to at least one character, mostly
        return truncate_at_stop(self._text(tokens[-tail:]), until)[1]

    def _text(self, tokens: list[int]) -> str:
        return self.specialist.detokenize([t for t in tokens if t not in self.eos_ids_])

    def _finish(
        self, prompt: list[int], plan: RowPlan, until: tuple[str, ...], tokens: list[int], step: int
    ) -> Attempt:
        """The attempt from the steered prefix ``tokens``: dense steps, or one continuation."""
        ended = (
            self._dense(prompt, plan, until, tokens)
            if plan.mode == "dense"
            else (self._ends(tokens, until))
        )
        tail, tail_tokens, finish = "", 0, "stop" if ended else "length"
        left = plan.max_new_tokens - len(tokens)
        if not ended and left > 0:
            settings = GenerationSettings(until, left, plan.temperature)
            rest = self.specialist.complete(prompt + tokens, settings, plan.seed)
            tail, finish = rest.text, rest.finish_reason or "stop"
            tail_tokens = rest.completion_tokens or 0
        text, stopped = truncate_at_stop(self._text(tokens) + tail, until)
        return Attempt(
            plan, text, len(tokens) + tail_tokens, "stop" if stopped else finish, step, tokens
        )

    def _dense(
        self, prompt: list[int], plan: RowPlan, until: tuple[str, ...], tokens: list[int]
    ) -> bool:
        """Every token from the fire step on is the mixture argmax (two requests per token);
        appends them to ``tokens`` and says whether the row ended (else it hit the budget)."""
        assert self.ancestor is not None
        greedy_step = GenerationSettings((), 1, 0.0)
        while not self._ends(tokens, until):
            if len(tokens) >= plan.max_new_tokens:
                return False
            steps = [
                server.complete(prompt + tokens, greedy_step, plan.seed, logprobs=self.top_k)
                for server in (self.specialist, self.ancestor)
            ]
            for step in steps:
                if step.finish_reason == "stop" and step.token_ids:
                    self.eos_ids_.add(step.token_ids[0])  # a one-token greedy stop: end of sequence
            rows = [_row(step.top, 0) for step in steps if step.top is not None]
            tokens.append(mixture_argmax(rows[0], rows[1], plan.alpha))
        return True
