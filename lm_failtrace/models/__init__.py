"""The bundled tiny specialist/ancestor pair (Hugging Face format), for tests and the demo.

Why bundled: the whole pipeline (logit features, repair operators, ``failtrace demo``) must run on
a laptop with no network and no GPU, on a real model with real failures. The pair is a GPT-2-style
character-level model (~0.9M parameters each) trained on the ``failtrace_arith`` format:

- ``ancestor``: trained on every level and operation of the format ("pre-training");
- ``specialist``: the ancestor post-trained on solutions that plant known failure mechanisms
  (occasional off-by-one slips, an erased multiplication table, a verbose style for long chains),
  so that its failures on the bundled problems have known causes (``arith.MECHANISMS``).

Both directories hold ``config.json``, ``model.safetensors`` and the same tokenizer files; load
them with ``transformers.AutoModelForCausalLM.from_pretrained(tiny_model_path("specialist"))``.
``scripts/train_tiny_pair.py`` rebuilds them byte for byte.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from lm_failtrace.errors import InputError

#: The roles of the bundled pair, in training order.
TINY_ROLES: tuple[str, ...] = ("ancestor", "specialist")


def tiny_model_path(role: str) -> Path:
    """Directory of one bundled tiny model, loadable with ``from_pretrained``.

    Args:
        role: ``"ancestor"`` or ``"specialist"``.

    Raises:
        InputError: for any other role.
    """
    if role not in TINY_ROLES:
        raise InputError(f"must be one of {', '.join(TINY_ROLES)}; got {role!r}", parameter="role")
    return Path(str(files(__name__) / "tiny" / role))


__all__ = ["TINY_ROLES", "tiny_model_path"]
