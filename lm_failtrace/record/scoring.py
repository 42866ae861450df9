"""Teacher-forced scoring of completions by a specialist and its ancestor (needs torch).

One batched forward pass per model over ``prompt + completion`` gives, at every generated
position, both models' top-K log-probs on the same token sequence; :mod:`lm_failtrace.record.logits`
turns them into the per-token quantities of method.md section 2. The ``failtrace-hf`` backend uses
this to add logit features to recorded rollouts, and the repair step uses it to set each unit's
junction threshold from its recorded failed rollouts.
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


def score_completions(
    specialist: Any,
    ancestor: Any,
    prompt_ids: Sequence[int],
    completions: Sequence[Sequence[int]],
    temperature: float,
    top_k: int = TOP_K,
    batch_size: int = 16,
) -> list[TokenQuantities]:
    """Per-token quantities of each completion (token ids) of one prompt.

    Both models read ``prompt + completion`` once (right-padded batches; positions of real tokens
    are unaffected in a causal LM); the logits at position ``p`` score the token at ``p + 1``.
    """
    import torch

    results: list[TokenQuantities] = []
    n_prompt = len(prompt_ids)
    for start in range(0, len(completions), batch_size):
        chunk = [list(c) for c in completions[start : start + batch_size]]
        width = n_prompt + max((len(c) for c in chunk), default=0)
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, comp in enumerate(chunk):
            seq = list(prompt_ids) + comp
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        with torch.no_grad():
            spec_logits = specialist(input_ids=ids, attention_mask=mask).logits
            anc_logits = ancestor(input_ids=ids, attention_mask=mask).logits
        for row, comp in enumerate(chunk):
            if not comp:
                empty = np.zeros(0)
                results.append(TokenQuantities(empty, empty, empty, empty))
                continue
            positions = slice(n_prompt - 1, n_prompt - 1 + len(comp))
            s_ids, s_lp = topk_logprobs(spec_logits[row, positions], top_k)
            a_ids, a_lp = topk_logprobs(anc_logits[row, positions], top_k)
            results.append(token_quantities(np.array(comp), s_ids, s_lp, a_ids, a_lp, temperature))
    return results
