"""The HF backend's sampling loop: batched, with one random stream per rollout.

Each row draws its uniforms from its own ``torch.Generator`` seeded with the rollout's seed, one
uniform per step, and picks its token by inverse-CDF sampling. What a rollout samples therefore
depends on its seed and its logits only, not on which other rollouts share the batch (up to
floating-point differences in the batched forward pass, which padding can change in the last bits).

Two hooks extend the loop without copying it:

- :class:`GenerationObserver` (logit features): sees every step's specialist logits and the
  tokens taken, and at the end the prompt and generated ids of every row (for one batched
  ancestor forward pass); returns per-row metadata merged into each rollout's ``meta``.
- :class:`TokenIntervention` (repair operators): with a ``companion`` model (the ancestor) run
  in lockstep on the same tokens, it may replace the sampled token of any row at any step.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from lm_failtrace.record.backends.generation import GenerationSettings, truncate_at_stop


class GenerationObserver(Protocol):
    """Hook into the sampling loop (see the module docstring)."""

    def on_step(
        self, step: int, logits: torch.Tensor, tokens: torch.Tensor, active: torch.Tensor
    ) -> None:
        """Called once per step with ``[B, V]`` raw logits, the ``[B]`` tokens taken and the
        ``[B]`` mask of rows still generating (their token is padding otherwise)."""

    def finish(
        self, prompts: Sequence[Sequence[int]], generated: Sequence[Sequence[int]]
    ) -> list[dict[str, Any]]:
        """Called once per batch; returns one metadata dict per row."""


class TokenIntervention(Protocol):
    """Replace sampled tokens (see the module docstring); observers see the final tokens."""

    def adjust(
        self,
        step: int,
        logits: torch.Tensor,
        companion_logits: torch.Tensor | None,
        tokens: torch.Tensor,
        uniforms: torch.Tensor | None,
        active: torch.Tensor,
    ) -> torch.Tensor:
        """Return the ``[B]`` tokens to take at ``step`` given the ``[B]`` sampled ones."""


@dataclass
class Rollout:
    """One sampled completion before it is wrapped for lm-eval."""

    text: str
    generated_tokens: int
    finish_reason: str
    meta: dict[str, Any] = field(default_factory=dict)
    token_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Vocabulary:
    """Token ids the loop needs: where generation ends and what pads."""

    eos_ids: frozenset[int]
    pad_id: int


def choose_tokens(
    logits: torch.Tensor, uniforms: torch.Tensor | None, settings: GenerationSettings
) -> torch.Tensor:
    """Greedy argmax, or temperature/top-k/top-p sampling by inverse CDF (one uniform per row)."""
    if settings.greedy or uniforms is None:
        return logits.argmax(dim=-1)
    scores = logits.float() / settings.temperature
    if settings.top_k is not None and settings.top_k < scores.shape[-1]:
        kth = scores.topk(settings.top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    probs = scores.softmax(dim=-1)
    if settings.top_p is not None and settings.top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # keep the smallest prefix whose mass reaches top_p (always the top token)
        drop = sorted_probs.cumsum(dim=-1) - sorted_probs >= settings.top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    cdf = probs.cumsum(dim=-1)
    targets = (uniforms * cdf[:, -1]).unsqueeze(-1)
    return torch.searchsorted(cdf, targets).squeeze(-1).clamp(max=probs.shape[-1] - 1)


def _cache_keyword(model: Any) -> str:
    # transformers >= 5.2x renamed ``past_key_values`` to ``cache`` (and warns on the old name)
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _row_uniforms(seeds: Sequence[int], steps: int) -> torch.Tensor:
    rows = [torch.rand(steps, generator=torch.Generator().manual_seed(s)) for s in seeds]
    return torch.stack(rows)


def _left_padded(
    prompts: Sequence[Sequence[int]], pad_id: int, device: Any
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Input ids, attention mask and position ids of the prompts as one batch.

    Left padding puts every row's next token in the last column, so each step appends one column
    for all rows; positions count real tokens only, so a row samples as it would alone.
    """
    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, prompt in enumerate(prompts):
        input_ids[i, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        attention[i, width - len(prompt) :] = 1
    input_ids, attention = input_ids.to(device), attention.to(device)
    return input_ids, attention, (attention.cumsum(-1) - 1).clamp(min=0)


@dataclass(frozen=True)
class _StopRule:
    """When a row ends: at an end-of-sequence token, or once its decoded text holds a stop string.

    Only the row's last ``tail`` tokens are decoded at each step, enough to contain any stop
    string (a token decodes to at least one character, mostly), so a check costs the same at any
    length.
    """

    tokenizer: Any
    until: tuple[str, ...]
    eos_ids: frozenset[int]
    tail: int

    @classmethod
    def of(cls, tokenizer: Any, settings: GenerationSettings, vocab: Vocabulary) -> _StopRule:
        tail = max((len(s) for s in settings.until), default=0) + 4
        return cls(tokenizer, settings.until, vocab.eos_ids, tail)

    def ends(self, row: list[int]) -> bool:
        """Whether the row's last token ends it."""
        return row[-1] in self.eos_ids or (
            bool(self.until)
            and truncate_at_stop(self.tokenizer.decode(row[-self.tail :]), self.until)[1]
        )


def _take(
    tokens: torch.Tensor,
    generated: list[list[int]],
    reasons: list[str | None],
    active: torch.Tensor,
    stops: _StopRule,
) -> None:
    """Append each generating row's token; a row that ends on it stops generating (``"stop"``)."""
    for i, token in enumerate(tokens.tolist()):
        if reasons[i] is not None:
            continue
        generated[i].append(token)
        if stops.ends(generated[i]):
            reasons[i] = "stop"
            active[i] = False


def _advance(
    models: Sequence[Any],
    outs: Sequence[Any],
    tokens: torch.Tensor,
    attention: torch.Tensor,
    positions: torch.Tensor,
    cache_kw: str,
) -> tuple[list[Any], torch.Tensor, torch.Tensor]:
    """Feed the step's tokens to every model on its own KV cache (one new column per row)."""
    ones = torch.ones((attention.shape[0], 1), dtype=attention.dtype, device=attention.device)
    attention = torch.cat([attention, ones], dim=1)
    positions = positions[:, -1:] + 1
    outs = [
        m(
            input_ids=tokens.unsqueeze(-1),
            attention_mask=attention,
            position_ids=positions,
            use_cache=True,
            **{cache_kw: getattr(o, cache_kw)},
        )
        for m, o in zip(models, outs, strict=True)
    ]
    return outs, attention, positions


def _observed_meta(
    observers: Sequence[GenerationObserver],
    prompts: Sequence[Sequence[int]],
    generated: Sequence[Sequence[int]],
) -> list[dict[str, Any]]:
    """Every observer's per-row metadata, merged row by row (later observers win a key)."""
    meta: list[dict[str, Any]] = [{} for _ in prompts]
    for observer in observers:
        for row_meta, observed in zip(meta, observer.finish(prompts, generated), strict=True):
            row_meta.update(observed)
    return meta


def _rollout(
    tokens: list[int], reason: str | None, meta: dict[str, Any], stops: _StopRule
) -> Rollout:
    """A row's rollout; its text leaves out end-of-sequence tokens and cuts the stop string (and
    anything its last token decoded after it), which lm-eval's ``until`` must never see."""
    body = [t for t in tokens if t not in stops.eos_ids]
    decoded = stops.tokenizer.decode(body, skip_special_tokens=True)
    text, _ = truncate_at_stop(decoded, stops.until)
    return Rollout(text, len(tokens), reason or "length", meta, tokens)


@torch.inference_mode()
def sample_batch(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    seeds: Sequence[int],
    settings: GenerationSettings,
    vocab: Vocabulary,
    observers: Sequence[GenerationObserver] = (),
    intervention: TokenIntervention | None = None,
    companion: Any = None,
) -> list[Rollout]:
    """Generate one rollout per prompt (all with the same ``settings``).

    With ``companion`` (a second causal LM on the same tokenizer), it reads the same tokens in
    lockstep and its logits go to ``intervention``.

    A row stops at an end-of-sequence token or when its decoded tail contains a stop string
    (``finish_reason="stop"``), or after ``settings.max_gen_toks`` tokens (``"length"``). Its
    ``generated_tokens`` counts every token it sampled, the stopping one included.
    """
    device = next(model.parameters()).device
    input_ids, attention, positions = _left_padded(prompts, vocab.pad_id, device)
    uniforms = None if settings.greedy else _row_uniforms(seeds, settings.max_gen_toks).to(device)
    stops = _StopRule.of(tokenizer, settings, vocab)
    cache_kw = _cache_keyword(model)

    generated: list[list[int]] = [[] for _ in prompts]
    reasons: list[str | None] = [None] * len(prompts)
    active = torch.ones(len(prompts), dtype=torch.bool, device=device)
    models = [model] if companion is None else [model, companion]
    outs = [
        m(input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True)
        for m in models
    ]
    for step in range(settings.max_gen_toks):
        logits = outs[0].logits[:, -1, :]
        step_uniforms = None if uniforms is None else uniforms[:, step]
        tokens = choose_tokens(logits, step_uniforms, settings)
        if intervention is not None:
            companion_logits = outs[1].logits[:, -1, :] if companion is not None else None
            tokens = intervention.adjust(
                step, logits, companion_logits, tokens, step_uniforms, active
            )
        tokens = torch.where(active, tokens, torch.full_like(tokens, vocab.pad_id))
        for observer in observers:
            observer.on_step(step, logits, tokens, active)
        _take(tokens, generated, reasons, active, stops)
        if not bool(active.any()):
            break
        outs, attention, positions = _advance(models, outs, tokens, attention, positions, cache_kw)

    meta = _observed_meta(observers, prompts, generated)
    return [
        _rollout(row, reason, row_meta, stops)
        for row, reason, row_meta in zip(generated, reasons, meta, strict=True)
    ]
