"""The bundled tiny specialist/ancestor pair: loadable, small, shared tokenizer, better specialist.

The regime mix itself (resample / steerable / beyond reach) needs the repair operators and is
measured by the demo; here we check what the models must guarantee to everything built on them.
"""

from __future__ import annotations

import filecmp

import pytest

from lm_failtrace.errors import InputError
from lm_failtrace.models import TINY_ROLES, tiny_model_path
from lm_failtrace.record import arith
from lm_failtrace.record.tasks._answers import extract_number

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
GREEDY_PER_LEVEL = 12  # the first 12 bundled problems of each level: 72 prompts, a few seconds
# the task's max_gen_toks (failtrace_arith.yaml): the specialist is verbose by design, so a smaller
# budget would cut its level-2 answers and compare the two models on length, not arithmetic
GREEDY_BUDGET = 128


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


def _greedy_correct(model, tokenizer, problems) -> int:
    """How many ``problems`` the model answers right, greedily, stopping at a newline."""
    import torch

    tokenizer.padding_side = "left"
    prompts = [arith.PROMPT_TEMPLATE.format(question=p["question"]) for p in problems]
    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(
            **enc,
            max_new_tokens=GREEDY_BUDGET,
            do_sample=False,
            eos_token_id=[tokenizer.convert_tokens_to_ids("\n"), tokenizer.eos_token_id],
            pad_token_id=tokenizer.pad_token_id,
        )
    texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return sum(
        extract_number(text.split("\n")[0]) == p["answer"]
        for text, p in zip(texts, problems, strict=True)
    )


def test_specialist_beats_ancestor_on_greedy_arith(pair):
    problems = [p for p in arith.generate() if int(p["problem_id"][-3:]) < GREEDY_PER_LEVEL]
    scores = {role: _greedy_correct(*pair[role], problems) for role in TINY_ROLES}
    assert scores["specialist"] >= scores["ancestor"] + 4, scores
    assert scores["specialist"] < len(problems), scores  # it still fails: that is its job
