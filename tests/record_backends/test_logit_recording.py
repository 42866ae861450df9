"""``failtrace-hf`` with ``ancestor=``: per-rollout logit features (docs/method.md section 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lm_eval.api.instance import Instance

from lm_failtrace.errors import InputError
from lm_failtrace.record.backends.hf import FailtraceHF
from lm_failtrace.record.logits import rollout_features
from lm_failtrace.record.scoring import score_completions

PROMPT = "Question: Start with 12. Add 30.\nAnswer:"
SAMPLING = {"until": ["\n"], "do_sample": True, "temperature": 0.6, "max_gen_toks": 30}
LOGIT_KEYS = ("spread", "concentration", "logit_dispersion")


def _requests(repeats: int = 6) -> list[Instance]:
    instance = Instance(
        request_type="generate_until",
        doc={},
        arguments=(PROMPT, SAMPLING),
        idx=0,
        metadata=("arith", 0, repeats),
    )
    return [instance] * repeats


@pytest.fixture(scope="module")
def ancestor(tmp_path_factory: pytest.TempPathFactory, make_tiny_lm) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("anc") / "ancestor", seed=1)


def test_recorded_features_equal_a_teacher_forced_computation(
    tiny_lm: Path, ancestor: Path
) -> None:
    """Specialist top-K from the generation loop + one ancestor pass == both models re-scored."""
    import torch

    from lm_failtrace.record.backends.decoding import sample_batch
    from lm_failtrace.record.backends.generation import GenerationSettings
    from lm_failtrace.record.backends.logit_features import AncestorObserver

    backend = FailtraceHF(pretrained=str(tiny_lm), ancestor=str(ancestor), batch_size=4)
    prompt = backend.tokenizer.encode(PROMPT, add_special_tokens=False)
    settings = GenerationSettings.from_gen_kwargs(SAMPLING, 30)
    with torch.inference_mode():
        rollouts = sample_batch(
            backend.model,
            backend.tokenizer,
            [prompt] * 4,
            [11, 12, 13, 14],
            settings,
            backend.vocab,
            observers=[AncestorObserver(backend.ancestor)],
        )
    rescored = score_completions(
        backend.model, backend.ancestor, prompt, [r.token_ids for r in rollouts], 0.6
    )
    for rollout, q in zip(rollouts, rescored, strict=True):
        expected = rollout_features(q.j, q.logit_var)
        for key in LOGIT_KEYS:
            assert rollout.meta[key] == pytest.approx(expected[key], abs=1e-5), key


def test_backend_records_logit_features_on_every_rollout(tiny_lm: Path, ancestor: Path) -> None:
    texts = FailtraceHF(
        pretrained=str(tiny_lm), ancestor=str(ancestor), batch_size=3
    ).generate_until(_requests(), disable_tqdm=True)
    for text in texts:
        assert all(np.isfinite(text.meta[key]) for key in LOGIT_KEYS)
        assert 0.0 <= text.meta["spread"] <= 1.0
    assert len({round(t.meta["concentration"], 9) for t in texts}) > 1


def test_identical_models_give_zero_spread(tiny_lm: Path) -> None:
    texts = FailtraceHF(pretrained=str(tiny_lm), ancestor=str(tiny_lm)).generate_until(
        _requests(3), disable_tqdm=True
    )
    for text in texts:
        assert text.meta["spread"] == 0.0
        assert text.meta["concentration"] == 0.0


def test_ancestor_with_another_tokenizer_is_refused(tiny_lm: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    other = tmp_path / "other"
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    tokenizer.add_tokens(["<extra>"])
    tokenizer.save_pretrained(other)
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(tiny_lm).save_pretrained(other)
    with pytest.raises(InputError, match="tokenizer"):
        FailtraceHF(pretrained=str(tiny_lm), ancestor=str(other))


def test_ancestor_path_typo_names_the_argument(tiny_lm: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="ancestor="):
        FailtraceHF(pretrained=str(tiny_lm), ancestor=str(tmp_path / "no-such-model"))
