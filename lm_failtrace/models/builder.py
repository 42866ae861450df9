"""Build tiny character-level GPT-2 models locally: one recipe for the bundled pair and the tests.

Why this exists: the pipeline needs real Hugging Face causal LMs that can be made with no hub, no
network and no GPU. ``scripts/train_tiny_pair.py`` builds the bundled specialist/ancestor pair
from these functions and the test suite builds its random-weight models with them, so a model the
tests make is assembled exactly like the ones the demo ships (same tokenizer construction, same
architecture family, same saved files); only sizes and weights differ.

torch, tokenizers and transformers come with the ``[hf]`` extra, so they are imported inside the
functions: importing this module costs nothing on a core install.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

#: Splits text into single characters, newlines included (``.`` alone would not match them).
_ONE_CHARACTER = r"[\s\S]"


def char_tokenizer(chars: Iterable[str], *, specials: Sequence[str], **options: Any) -> Any:
    """A ``PreTrainedTokenizerFast`` with one token per character, built with ``tokenizers``.

    Why character-level: a tiny model learns arithmetic formats far more easily when every digit
    is its own token, and such a vocabulary is small, needs no training and is exactly
    reproducible, so two models built from the same arguments share their tokenizer byte for
    byte (which the ancestor's logit features require).

    Args:
        chars: the characters, each its own token; ids follow ``specials``.
        specials: special tokens, ids ``0..len(specials) - 1`` in this order.
        **options: passed to ``PreTrainedTokenizerFast``: at least ``unk_token`` (what an unknown
            character becomes), usually ``eos_token`` and ``pad_token``, all among ``specials``;
            also e.g. ``model_max_length``.

    Raises:
        ValueError: a special token option that is not among ``specials``, a character listed
            twice, or an entry of ``chars`` that is not one character.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = list(chars)
    tokens = [*specials, *chars]
    if any(len(c) != 1 for c in chars) or len(set(tokens)) != len(tokens):
        raise ValueError("chars must be distinct single characters, none of them a special token")
    named = {k: v for k, v in options.items() if k.endswith("_token")}
    if "unk_token" not in named or not set(named.values()) <= set(specials):
        raise ValueError(f"special token options {named} must include unk_token, from specials")
    vocab = {token: i for i, token in enumerate(tokens)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=named["unk_token"]))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(_ONE_CHARACTER), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=core, **options)


def tiny_gpt2(
    tokenizer: Any,
    *,
    n_layer: int,
    n_embd: int,
    n_head: int,
    n_positions: int,
    seed: int,
    dropout: float = 0.0,
) -> Any:
    """An untrained ``GPT2LMHeadModel`` sized for ``tokenizer``, its weights a function of ``seed``.

    Why these choices: the vocabulary size and the eos/pad ids are read from the tokenizer, so the
    model and its tokenizer cannot disagree; the beginning-of-text id is the end-of-text one, as
    in GPT-2. The initial weights are drawn from torch's global generator seeded with ``seed``
    inside ``torch.random.fork_rng``, so the same arguments give the same weights on any machine
    (with one CPU thread) and the caller's random state is left as it was. Dropout defaults to 0
    so that training consumes no random numbers and can be resumed from saved weights exactly.

    Args:
        tokenizer: e.g. from :func:`char_tokenizer`; needs an ``eos_token`` and a ``pad_token``.
        n_layer, n_embd, n_head, n_positions: the GPT-2 sizes (layers, width, heads, context).
        seed: seed of the initial weights.
        dropout: residual, embedding and attention dropout.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPT2LMHeadModel(config)


def save_tokenizer(tokenizer: Any, path: Path | str) -> None:
    """Save ``tokenizer`` under the class name every transformers version knows.

    transformers 5 records its generic ``TokenizersBackend``, which 4.x cannot load; the files
    are otherwise those of a ``PreTrainedTokenizerFast``, so name that class instead.
    """
    tokenizer.save_pretrained(path)
    config_path = Path(path) / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def save_model(model: Any, tokenizer: Any, path: Path | str) -> Path:
    """Save ``model`` and ``tokenizer`` side by side (loadable with ``from_pretrained``)."""
    model.save_pretrained(path)
    save_tokenizer(tokenizer, path)
    return Path(path)
