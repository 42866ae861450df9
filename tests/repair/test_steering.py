"""Each operator changes generation exactly where it should (docs/method.md section 6).

Specialist and ancestor are the bundled tiny pair (one tokenizer); with no stop strings rows run
to the budget unless they sample ``<eos>``. Attempts share seeds across
operators, so every steered row equals the plain row token for token up to its change.
"""

from __future__ import annotations

import numpy as np
import pytest

from lm_failtrace.record.backends.decoding import Vocabulary
from lm_failtrace.record.scoring import score_completions
from lm_failtrace.repair.operators import OPERATORS, UnitContext
from lm_failtrace.repair.steering import RowPlan, run_plans

# A five-step chain: the specialist restates it first (verbosity), so rows run past L tokens.
PROMPT = "Question: Start with 2. Add 4. Add 2. Add 1. Subtract 4. Subtract 2.\nAnswer:"
L = 40


@pytest.fixture(scope="module")
def pair():
    """The bundled tiny specialist and its ancestor."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lm_failtrace.models import tiny_model_path

    torch.set_num_threads(1)
    spec_dir, anc_dir = tiny_model_path("specialist"), tiny_model_path("ancestor")
    tok = AutoTokenizer.from_pretrained(spec_dir)
    spec = AutoModelForCausalLM.from_pretrained(spec_dir).eval()
    anc = AutoModelForCausalLM.from_pretrained(anc_dir).eval()
    vocab = Vocabulary(frozenset({tok.eos_token_id}), tok.pad_token_id)
    return spec, anc, tok, vocab


def _ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def _run(pair, plans: list[RowPlan]):
    spec, anc, tok, vocab = pair
    return run_plans(spec, tok, vocab, _ids(tok, PROMPT), plans, until=(), ancestor=anc)


def _long_seeds(pair, n: int) -> list[int]:
    """Seeds whose plain sample runs the whole budget (no <eos>), so every step exists."""
    found = []
    for seed in range(200):
        (a,) = _run(pair, [RowPlan(seed=seed, max_new_tokens=L)])
        if a.finish_reason == "length":
            found.append(seed)
        if len(found) == n:
            return found
    raise AssertionError("no seed ran to the budget")


def _logits(model, ids: list[int]):
    import torch

    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0].float()


def test_sparse_steer_replaces_one_token_at_the_detector_step(pair) -> None:
    spec, anc, tok, _ = pair
    (seed,) = _long_seeds(pair, 1)
    (plain,) = _run(pair, [RowPlan(seed=seed, max_new_tokens=L)])
    prompt_ids = _ids(tok, PROMPT)
    (q,) = score_completions(spec, anc, prompt_ids, [plain.token_ids], temperature=0.6)
    threshold = float(np.quantile(q.j[20:], 0.5))
    expected_fire = 20 + int(np.argmax(q.j[20:] > threshold))
    (steered,) = _run(
        pair, [RowPlan(seed=seed, max_new_tokens=L, mode="sparse", threshold=threshold)]
    )
    assert steered.fired_at == expected_fire
    assert steered.token_ids[:expected_fire] == plain.token_ids[:expected_fire]
    ctx_ids = prompt_ids + plain.token_ids[:expected_fire]
    mix = 0.7 * _logits(spec, ctx_ids)[-1] + 0.3 * _logits(anc, ctx_ids)[-1]
    assert steered.token_ids[expected_fire] == int(mix.argmax())


def test_random_steer_fires_at_its_position_only(pair) -> None:
    spec, anc, tok, _ = pair
    (seed,) = _long_seeds(pair, 1)
    plain, steered = _run(
        pair,
        [
            RowPlan(seed=seed, max_new_tokens=L),
            RowPlan(seed=seed, max_new_tokens=L, mode="random", position=27),
        ],
    )
    assert steered.fired_at == 27
    assert steered.token_ids[:27] == plain.token_ids[:27]
    ctx_ids = _ids(tok, PROMPT) + plain.token_ids[:27]
    mix = 0.7 * _logits(spec, ctx_ids)[-1] + 0.3 * _logits(anc, ctx_ids)[-1]
    assert steered.token_ids[27] == int(mix.argmax())


def test_local_temp_lifts_the_temperature_of_the_fire_step_only(pair) -> None:
    import torch

    from lm_failtrace.record.backends.decoding import choose_tokens
    from lm_failtrace.record.backends.generation import GenerationSettings

    spec, _, tok, _ = pair
    (seed,) = _long_seeds(pair, 1)
    plain, lifted = _run(
        pair,
        [
            RowPlan(seed=seed, max_new_tokens=L),
            RowPlan(
                seed=seed,
                max_new_tokens=L,
                mode="local_temp",
                threshold=-1.0,
                local_temperature=2.0,
            ),
        ],
    )
    assert lifted.fired_at == 20  # j >= 0 > -1: fires at the first allowed step
    assert lifted.token_ids[:20] == plain.token_ids[:20]
    uniform = torch.rand(L, generator=torch.Generator().manual_seed(seed))[20]
    logits = _logits(spec, _ids(tok, PROMPT) + plain.token_ids[:20])[-1:]
    expected = choose_tokens(logits, uniform.view(1), GenerationSettings((), 1, 2.0))
    assert lifted.token_ids[20] == int(expected[0])


def test_dense_steer_takes_the_mixture_argmax_from_the_fire_step_on(pair) -> None:
    spec, anc, tok, _ = pair
    (seed,) = _long_seeds(pair, 1)
    plain, dense = _run(
        pair,
        [
            RowPlan(seed=seed, max_new_tokens=L),
            RowPlan(seed=seed, max_new_tokens=L, mode="dense", threshold=-1.0),
        ],
    )
    assert dense.fired_at == 20
    assert dense.token_ids[:20] == plain.token_ids[:20]
    ids = _ids(tok, PROMPT)
    gen = dense.token_ids
    n_prompt = len(ids)
    spec_logits = _logits(spec, ids + gen)
    anc_logits = _logits(anc, ids + gen)
    for t in range(20, len(gen)):
        mix = 0.7 * spec_logits[n_prompt + t - 1] + 0.3 * anc_logits[n_prompt + t - 1]
        assert gen[t] == int(mix.argmax()), t


def test_black_box_operators(pair) -> None:
    seeds = _long_seeds(pair, 2)
    ctx = UnitContext("p1", threshold=None, temperature=0.6, max_new_tokens=10)
    retry = OPERATORS["retry"].plans(ctx, trial=0, attempts=3)
    budget = OPERATORS["budget"].plans(ctx, trial=0, attempts=3)
    shift = OPERATORS["temp_shift"].plans(ctx, trial=0, attempts=3)
    assert [p.seed for p in retry] == [p.seed for p in budget] == [p.seed for p in shift]
    assert len({p.seed for p in retry}) == 3
    assert all(p.max_new_tokens == 40 for p in budget)
    assert all(p.temperature == 1.0 for p in shift)
    base, extended = _run(
        pair, [RowPlan(seed=seeds[0], max_new_tokens=10), RowPlan(seed=seeds[0], max_new_tokens=40)]
    )
    assert base.finish_reason == "length" and base.generated_tokens == 10
    assert extended.generated_tokens == 40
    assert extended.token_ids[:10] == base.token_ids


def test_steering_operators_need_a_threshold_and_the_ancestor(pair) -> None:
    spec, _, tok, vocab = pair
    ctx = UnitContext("p1", threshold=None)
    with pytest.raises(ValueError, match="threshold"):
        OPERATORS["sparse_steer"].plans(ctx, trial=0, attempts=1)
    plan = RowPlan(seed=1, mode="random", position=21)
    with pytest.raises(ValueError, match="ancestor"):
        run_plans(spec, tok, vocab, _ids(tok, PROMPT), [plan], until=())


def test_random_positions_lie_in_the_documented_range() -> None:
    ctx = UnitContext("p9", threshold=None, max_new_tokens=128)
    positions = [
        p.position for r in range(30) for p in OPERATORS["sparse_steer_random"].plans(ctx, r, 3)
    ]
    assert min(positions) >= 20 and max(positions) <= 64
    assert len(set(positions)) > 10
