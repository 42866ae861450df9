"""Fixtures for the backend tests: a tiny local causal LM and a runner for ``failtrace eval``."""

from __future__ import annotations

import os
import string
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FAILTRACE = Path(sys.executable).with_name("failtrace")
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


def _run_failtrace(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the installed ``failtrace`` CLI in a subprocess, single-threaded and offline."""
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
    )
    env.pop("OPENAI_API_KEY", None)
    return subprocess.run(
        [str(FAILTRACE), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def run_failtrace() -> Callable[..., subprocess.CompletedProcess]:
    return _run_failtrace


@pytest.fixture(scope="session")
def tasks_path() -> str:
    """The folder ``failtrace tasks-path`` prints (the user flow's ``--include_path``)."""
    out = subprocess.run(
        [str(FAILTRACE), "tasks-path"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert Path(out, "failtrace_arith").is_dir(), out
    return out
