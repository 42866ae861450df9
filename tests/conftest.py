"""Shared fixtures: the bundled paper data, test models, Chromium, a clean MLflow environment."""

from __future__ import annotations

import os
import shutil
import string
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lm_failtrace.datasets import paper_profiles_path


@pytest.fixture(scope="session")
def paper_csv() -> Path:
    """The paper's profile table as shipped with the package (4 of its 8 cells)."""
    return paper_profiles_path()


VOCAB_CHARS = string.digits + string.ascii_letters + " .,:+-*=#?\n"


def build_tiny_lm(folder: Path, seed: int = 0) -> Path:
    """A 2-layer random-weight GPT-2 with a character-level tokenizer, saved to ``folder``.

    Built by ``lm_failtrace.models.builder``, the bundled pair's builder (no hub), only smaller
    and untrained. Near-uniform next-token probabilities over ~80 symbols make a newline (the
    arith stop string) or ``<eos>`` likely within a few dozen tokens, so short runs see both
    finish reasons.
    """
    from lm_failtrace.models.builder import char_tokenizer, save_model, tiny_gpt2

    tokenizer = char_tokenizer(
        VOCAB_CHARS,
        specials=("<pad>", "<eos>", "<unk>"),
        pad_token="<pad>",
        eos_token="<eos>",
        unk_token="<unk>",
    )
    model = tiny_gpt2(tokenizer, n_layer=2, n_embd=32, n_head=2, n_positions=256, seed=seed)
    return save_model(model, tokenizer, folder)


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.set_num_threads(1)
    return build_tiny_lm(tmp_path_factory.mktemp("models") / "tiny-char-gpt2")


@pytest.fixture(scope="session")
def make_tiny_lm() -> Callable[..., Path]:
    """``build_tiny_lm`` for tests that need several models (e.g. a specialist and an ancestor)."""
    return build_tiny_lm


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's headless Chromium, for tests of pages a person reads (.ci/run installs it)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise FileNotFoundError("Debian's chromium is needed (.ci/run installs it)")
    return path


#: Environment variables through which one MLflow store can leak into the next test:
#: ``mlflow.set_tracking_uri``/``set_registry_uri`` also set them, for subprocesses.
MLFLOW_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@pytest.fixture(autouse=True)
def _no_mlflow_store_from_elsewhere() -> Iterator[None]:
    """Each test starts and ends without an MLflow store chosen by the environment."""
    for name in MLFLOW_URI_VARIABLES:
        os.environ.pop(name, None)
    yield
    for name in MLFLOW_URI_VARIABLES:
        os.environ.pop(name, None)
