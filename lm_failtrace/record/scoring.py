"""Teacher-forced scoring of completions by a specialist and its ancestor (needs torch).

One batched forward pass per model over ``prompt + completion`` gives, at every generated
position, both models' top-K log-probs on the same token sequence;
:mod:`lm_failtrace.record.logits` turns them into the per-token quantities of docs/method.md
section 2. The ``failtrace-hf`` backend uses this to add logit features to recorded rollouts,
and the repair step uses it to set each unit's junction threshold from its recorded failed
rollouts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lm_failtrace.record.logits import TOP_K, TokenQuantities, token_quantities


def check_same_tokenizer(specialist_tokenizer: Any, ancestor_tokenizer: Any) -> None:
    """Logit features compare token by token: the two models must share one vocabulary."""
    from lm_failtrace.errors import InputError

    if specialist_tokenizer.get_vocab() != ancestor_tokenizer.get_vocab():
        raise InputError(
            "the ancestor's tokenizer differs from the specialist's; logit features need the "
            "same tokenizer (vocabulary and ids)",
            column="ancestor",
        )


def topk_logprobs(logits: Any, k: int = TOP_K) -> tuple[np.ndarray, np.ndarray]:
    """Top-K token ids and T=1 log-probs (log-softmax over the vocabulary) of logits [..., V]."""
    import torch

    logp = torch.log_softmax(logits.float(), dim=-1)
    values, ids = torch.topk(logp, min(k, logp.shape[-1]), dim=-1)
    return ids.cpu().numpy(), values.cpu().numpy().astype(np.float64)


def completion_topk(
    model: Any,
    prompts: Sequence[Sequence[int]],
    completions: Sequence[Sequence[int]],
    top_k: int = TOP_K,
    batch_size: int = 16,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Teacher-forced top-K ids and log-probs at every completion position, row by row.

    Rows are right-padded (a causal LM's real positions are unaffected); the logits at position
    ``p`` score the token at ``p + 1``. Returns one ``(ids, logprobs)`` pair of shape (len, K)
    per completion.
    """
    import torch

    results: list[tuple[np.ndarray, np.ndarray]] = []
    device = next(model.parameters()).device
    for start in range(0, len(completions), batch_size):
        rows = list(
            zip(
                prompts[start : start + batch_size],
                completions[start : start + batch_size],
                strict=True,
            )
        )
        width = max(len(p) + len(c) for p, c in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, (prompt, comp) in enumerate(rows):
            seq = list(prompt) + list(comp)
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        with torch.inference_mode():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        for row, (prompt, comp) in enumerate(rows):
            positions = slice(len(prompt) - 1, len(prompt) - 1 + len(comp))
            results.append(topk_logprobs(logits[row, positions], top_k))
    return results


def score_completions(
    specialist: Any,
    ancestor: Any,
    prompt_ids: Sequence[int],
    completions: Sequence[Sequence[int]],
    temperature: float,
    top_k: int = TOP_K,
) -> list[TokenQuantities]:
    """Per-token quantities of each completion (token ids) of one prompt, teacher-forced."""
    prompts = [list(prompt_ids)] * len(completions)
    spec = completion_topk(specialist, prompts, completions, top_k)
    anc = completion_topk(ancestor, prompts, completions, top_k)
    return [
        token_quantities(np.asarray(comp, dtype=np.int64), s_ids, s_lp, a_ids, a_lp, temperature)
        for comp, (s_ids, s_lp), (a_ids, a_lp) in zip(completions, spec, anc, strict=True)
    ]
