"""lm-eval model backends that record every rollout (seed, token count, finish reason).

Importing a backend module registers it with lm-eval (0.4.13 has no plugin discovery);
``failtrace eval`` does that through :func:`register`, and newer lm-eval versions find the same
modules through the ``lm_eval.models`` entry points declared in ``pyproject.toml``.
"""

from __future__ import annotations

import importlib

#: lm-eval model name -> module that registers it.
BACKENDS: dict[str, str] = {
    "failtrace-hf": "lm_failtrace.record.backends.hf",
    "failtrace-local-completions": "lm_failtrace.record.backends.completions",
}


def model_args(model: str) -> tuple[str, ...]:
    """The model arguments a failtrace backend accepts (its module's ``MODEL_ARGS``)."""
    return importlib.import_module(BACKENDS[model]).MODEL_ARGS


def register() -> None:
    """Import every backend module so lm-eval's ``--model NAME`` finds it.

    lm-eval's built-in models are registered first: its registry loads them lazily only while it
    is empty, so registering ours first would hide ``hf``, ``vllm``, ``local-completions``, ...
    """
    importlib.import_module("lm_eval.models")
    for module in BACKENDS.values():
        importlib.import_module(module)
