"""Shared fixtures: the paper's per-problem data, read in place from ../shared."""

from __future__ import annotations

import string
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAPER_CSV = REPO.parent / "shared" / "data" / "paper" / "failure_profiles.visible.csv"


@pytest.fixture(scope="session")
def paper_csv() -> Path:
    if not PAPER_CSV.is_file():
        raise FileNotFoundError(
            f"the paper's data is expected at {PAPER_CSV} (shared/ beside the repo)"
        )
    return PAPER_CSV


VOCAB_CHARS = string.digits + string.ascii_letters + " .,:+-*=#?\n"


def build_tiny_lm(folder: Path, seed: int = 0) -> Path:
    """A 2-layer random-weight GPT-2 with a character-level tokenizer, saved to ``folder``.

    Built with ``tokenizers`` and ``transformers`` alone (no hub). Near-uniform next-token
    probabilities over ~80 symbols make a newline (the arith stop string) or ``<eos>`` likely
    within a few dozen tokens, so short runs see both finish reasons.
    """
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    specials = ["<pad>", "<eos>", "<unk>"]
    vocab = {tok: i for i, tok in enumerate(specials + list(VOCAB_CHARS))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(vocab),
        n_positions=256,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=1,
        eos_token_id=1,
        pad_token_id=0,
    )
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.set_num_threads(1)
    return build_tiny_lm(tmp_path_factory.mktemp("models") / "tiny-char-gpt2")


@pytest.fixture(scope="session")
def make_tiny_lm() -> Callable[..., Path]:
    """``build_tiny_lm`` for tests that need several models (e.g. a specialist and an ancestor)."""
    return build_tiny_lm
