"""The bundled tiny specialist/ancestor pair: loadable, small, shared tokenizer, planted failures.

What the repair operators make of the planted mechanisms is checked on the demo's run
(tests/demo); here, greedily and cheaply, that each mechanism is in the weights.
"""

from __future__ import annotations

import filecmp

import pytest

from lm_failtrace.errors import InputError
from lm_failtrace.models import TINY_ROLES, tiny_model_path
from lm_failtrace.record import arith
from lm_failtrace.record.tasks._answers import extract_number

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
GREEDY_PER_MECHANISM = 12  # the first 12 bundled problems of each mechanism: 48 prompts
GREEDY_BUDGET = 128  # the task's max_gen_toks (failtrace_arith.yaml)


@pytest.fixture(scope="module")
def pair():
    transformers = pytest.importorskip("transformers")
    loaded = {}
    for role in TINY_ROLES:
        path = tiny_model_path(role)
        model = transformers.AutoModelForCausalLM.from_pretrained(path).eval()
        tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        loaded[role] = (model, tokenizer)
    return loaded


def test_pair_loads_from_package_path(pair):
    for role in TINY_ROLES:
        model, tokenizer = pair[role]
        assert tiny_model_path(role).name == role
        assert model.config.model_type == "gpt2"
        assert model.config.vocab_size == len(tokenizer)
        assert tokenizer.eos_token == "<|endoftext|>"
        assert tokenizer.pad_token_id != tokenizer.eos_token_id


def test_unknown_role_is_an_input_error():
    with pytest.raises(InputError, match=r"parameter 'role': must be one of ancestor, specialist"):
        tiny_model_path("teacher")


def test_tokenizer_is_shared_and_character_level(pair):
    for name in TOKENIZER_FILES:
        assert filecmp.cmp(
            tiny_model_path("ancestor") / name, tiny_model_path("specialist") / name, shallow=False
        ), name
    problem = next(arith.generate())
    text = arith.PROMPT_TEMPLATE.format(question=problem["question"]) + " " + problem["solution"]
    ids = {role: pair[role][1](text)["input_ids"] for role in TINY_ROLES}
    assert ids["ancestor"] == ids["specialist"]
    assert len(ids["ancestor"]) == len(text)  # one token per character, nothing added
    assert pair["ancestor"][1].decode(ids["ancestor"]) == text


def test_weights_are_small():
    total = sum((tiny_model_path(role) / "model.safetensors").stat().st_size for role in TINY_ROLES)
    assert total < 10 * 2**20
    assert not filecmp.cmp(
        tiny_model_path("ancestor") / "model.safetensors",
        tiny_model_path("specialist") / "model.safetensors",
        shallow=False,
    )


def _greedy(model, tokenizer, problems, budget: int = GREEDY_BUDGET) -> list[str]:
    """The model's greedy answer text to each of ``problems``, up to a newline or ``budget``."""
    import torch

    tokenizer.padding_side = "left"
    prompts = [arith.PROMPT_TEMPLATE.format(question=p["question"]) for p in problems]
    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(
            **enc,
            max_new_tokens=budget,
            do_sample=False,
            eos_token_id=[tokenizer.convert_tokens_to_ids("\n"), tokenizer.eos_token_id],
            pad_token_id=tokenizer.pad_token_id,
        )
    texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return [text.split("\n")[0] for text in texts]


def _n_correct(texts: list[str], problems: list[dict]) -> int:
    return sum(extract_number(t) == p["answer"] for t, p in zip(texts, problems, strict=True))


@pytest.fixture(scope="module")
def greedy(pair) -> dict:
    """Per mechanism: its problems and both models' greedy answers at the task's budget."""
    out = {}
    for mechanism in arith.MECHANISMS:
        problems = [
            p
            for p in arith.generate()
            if p["mechanism"] == mechanism and int(p["problem_id"][-3:]) < GREEDY_PER_MECHANISM
        ]
        out[mechanism] = (problems, {role: _greedy(*pair[role], problems) for role in TINY_ROLES})
    return out


def test_slips_are_not_in_the_specialists_greedy_answers(greedy):
    problems, texts = greedy["slip"]
    assert _n_correct(texts["specialist"], problems) >= 10  # the skill is there; sampling slips


def test_verbosity_runs_past_the_budget_and_a_larger_one_finishes(pair, greedy):
    problems, texts = greedy["verbosity"]
    verbose = [t.startswith(" Let me restate: ") for t in texts["specialist"]]
    # 11 of 12: one five-step chain gets a plain (and short: it skips a step) answer
    assert sum(verbose) >= 11, texts["specialist"]
    for text, restated in zip(texts["specialist"], verbose, strict=True):
        assert (arith.ANSWER_MARKER in text) != restated  # restated: cut at 128 tokens
    assert all(arith.ANSWER_MARKER in t for t in texts["ancestor"])  # plain answers fit
    longer = _greedy(*pair["specialist"], problems, budget=4 * GREEDY_BUDGET)
    assert all(arith.ANSWER_MARKER in t for t in longer)  # the budget operator's 4x finishes


def test_the_specialist_forgot_what_the_ancestor_still_does(greedy):
    problems, texts = greedy["forgotten_skill"]
    assert _n_correct(texts["ancestor"], problems) >= 10
    assert _n_correct(texts["specialist"], problems) <= 4


def test_beyond_reach_is_beyond_both_models(greedy):
    problems, texts = greedy["beyond_reach"]
    assert all(_n_correct(texts[role], problems) == 0 for role in TINY_ROLES)
