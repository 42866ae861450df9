"""``failtrace-hf`` in-process on a tiny local model: seeds, batching, finish reasons, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from lm_eval.api.instance import Instance

from lm_failtrace.errors import InputError
from lm_failtrace.record.backends.hf import FailtraceHF
from lm_failtrace.record.backends.seeds import rollout_seed

PROMPT = "Question: Start with 12. Add 30.\nAnswer:"


def _requests(gen_kwargs: dict, docs: int = 3, repeats: int = 4) -> list[Instance]:
    """lm-eval's layout: each doc's one Instance object repeated ``repeats`` times in a row."""
    out = []
    for doc_id in range(docs):
        instance = Instance(
            request_type="generate_until",
            doc={},
            arguments=(PROMPT + " " * doc_id, gen_kwargs),
            idx=0,
            metadata=("arith", doc_id, repeats),
        )
        out.extend([instance] * repeats)
    return out


SAMPLING = {"until": ["\n"], "do_sample": True, "temperature": 0.6, "max_gen_toks": 24}


def test_repeats_get_their_own_seed_and_batching_does_not_change_samples(tiny_lm: Path) -> None:
    requests = _requests(SAMPLING)
    batched = FailtraceHF(pretrained=str(tiny_lm), seed=3, batch_size=5).generate_until(
        requests, disable_tqdm=True
    )
    single = FailtraceHF(pretrained=str(tiny_lm), seed=3, batch_size=1).generate_until(
        requests, disable_tqdm=True
    )
    assert [str(t) for t in batched] == [str(t) for t in single]
    assert [t.meta for t in batched] == [t.meta for t in single]
    for i, text in enumerate(batched):
        doc_id, repeat = divmod(i, 4)
        assert text.meta["repeat"] == repeat and text.meta["doc_id"] == doc_id
        assert text.meta["seed"] == rollout_seed(3, "arith", doc_id, repeat)
    # distinct seeds sample distinct completions (random model, 24 tokens of ~80 symbols)
    assert len({str(t) for t in batched[:4]}) == 4


def test_finish_reasons_and_token_counts(tiny_lm: Path) -> None:
    texts = FailtraceHF(pretrained=str(tiny_lm), batch_size=4).generate_until(
        _requests(SAMPLING, docs=4, repeats=8), disable_tqdm=True
    )
    reasons = [t.meta["finish_reason"] for t in texts]
    assert set(reasons) == {"stop", "length"}  # both occur with this model and limit
    for text in texts:
        assert "\n" not in text  # cut at the stop string
        tokens = text.meta["generated_tokens"]
        if text.meta["finish_reason"] == "length":
            # at most one character per token (special tokens decode to nothing)
            assert tokens == 24 and len(text) <= 24
        else:
            assert 1 <= tokens <= 24 and len(text) <= tokens - 1  # the stop token is counted


def test_greedy_repeats_agree(tiny_lm: Path) -> None:
    texts = FailtraceHF(pretrained=str(tiny_lm)).generate_until(
        _requests({"until": ["\n"], "do_sample": False, "max_gen_toks": 8}, docs=1, repeats=3),
        disable_tqdm=True,
    )
    assert len({str(t) for t in texts}) == 1
    assert len({t.meta["seed"] for t in texts}) == 3


def test_bad_model_arguments_name_the_argument(tiny_lm: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"pretrained='.*nope'.* not a model folder"):
        FailtraceHF(pretrained=str(tmp_path / "nope"))
    with pytest.raises(InputError, match="'pretrained' is required"):
        FailtraceHF()
    with pytest.raises(InputError, match=r"unknown model argument.*pretraind"):
        FailtraceHF(pretraind=str(tiny_lm))
    lm = FailtraceHF(pretrained=str(tiny_lm))
    with pytest.raises(InputError, match=r"gen_kwargs.*repetition_penalty"):
        lm.generate_until(_requests({"repetition_penalty": 1.2}, docs=1, repeats=1))


def test_model_info_reports_the_device_and_dtype_it_runs_on(tiny_lm: Path) -> None:
    import torch

    # lm-eval writes these into its results' config; `failtrace log` logs them as device/dtype.
    info = FailtraceHF(pretrained=str(tiny_lm), device="cuda:0").get_model_info()
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"  # no CUDA: it ran on the CPU
    assert (info["model_device"], info["model_dtype"]) == (expected, "float32")
    assert info["model_num_parameters"] > 0
