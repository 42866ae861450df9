"""``failtrace-hf``: Hugging Face causal LMs that record every rollout.

Usage: ``failtrace eval --model failtrace-hf --model_args pretrained=PATH[,seed=N,dtype=...]``.
With ``ancestor=PATH`` (the base checkpoint, same tokenizer) every rollout also carries the logit
features of docs/method.md section 2 (:mod:`lm_failtrace.record.backends.logit_features`).
torch and transformers are imported when the backend is instantiated (the ``[hf]`` extra), so
registering it costs nothing.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from lm_failtrace.errors import InputError
from lm_failtrace.record.backends.generation import (
    GenerationSettings,
    parse_batch_size,
    reject_unknown_args,
)
from lm_failtrace.record.backends.seeds import DEFAULT_BASE_SEED, assign_repeats
from lm_failtrace.record.rollout_text import RolloutText

log = logging.getLogger(__name__)

#: Every model argument the backend takes (others are refused by name).
MODEL_ARGS = (
    "pretrained",
    "seed",
    "dtype",
    "max_length",
    "max_gen_toks",
    "add_bos_token",
    "trust_remote_code",
    "batch_size",
    "max_batch_size",
    "device",
    "ancestor",
    "logit_top_k",
)


def _import_hf() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise InputError(
            f"failtrace-hf needs torch and transformers ({exc.name} is missing): "
            "pip install 'lm-failtrace[hf]'"
        ) from exc
    return torch, transformers


def _load(arg: str, name: str, transformers: Any, load: dict[str, Any]) -> tuple[Any, Any]:
    """Tokenizer and causal LM from a model argument; a typo is an error naming the argument."""
    if _looks_like_path(name) and not Path(name).expanduser().is_dir():
        raise InputError(f"failtrace-hf: {arg}={name!r} is not a model folder", column="model_args")
    source = str(Path(name).expanduser()) if Path(name).expanduser().is_dir() else name
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            source, trust_remote_code=load["trust_remote_code"]
        )
        model = transformers.AutoModelForCausalLM.from_pretrained(source, **load)
    except (OSError, ValueError) as exc:
        raise InputError(
            f"failtrace-hf: cannot load {arg}={name!r}: {exc}", column="model_args"
        ) from exc
    return tokenizer, model


def _looks_like_path(name: str) -> bool:
    """A folder the user meant (so a typo is reported as such), not a hub id like ``org/name``."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or Path(name).exists()


@register_model("failtrace-hf")
class FailtraceHF(LM):
    """A causal LM sampled with one seed per repeat, recording token counts and finish reasons.

    Args:
        pretrained: a local model folder (or a hub id ``org/name`` available to transformers).
        seed: base seed of the per-repeat seeds (``failtrace eval`` fills it from ``--seed``).
        dtype: ``auto``, ``float32``, ``bfloat16`` or ``float16``.
        max_length: context window; default from the model config.
        max_gen_toks: new-token limit when the task does not set one.
        add_bos_token: prepend the tokenizer's special tokens to prompts (as lm-eval's ``hf``).
        trust_remote_code: passed to transformers.
        batch_size: rollouts per forward pass (``auto`` = 8); ``max_batch_size`` is accepted and
            ignored. device: ``cpu``, ``cuda``, ``cuda:N``; CUDA falls back to CPU when absent.
        ancestor: a local model folder of the ancestor (same tokenizer); enables logit features.
        logit_top_k: log-probs kept per position for the logit features (docs/method.md: 100).

    Attributes:
        model, tokenizer: the loaded specialist, for code that samples with the same loop
            (:func:`~lm_failtrace.record.backends.decoding.sample_batch`; repair does).
        ancestor: the loaded ancestor model, or ``None``.
        vocab: the end-of-sequence and padding ids the sampling loop uses.
    """

    def __init__(
        self,
        pretrained: str | None = None,
        seed: int | None = None,
        dtype: str = "auto",
        max_length: int | None = None,
        max_gen_toks: int = 256,
        add_bos_token: bool = False,
        trust_remote_code: bool = False,
        batch_size: int | str | None = None,
        max_batch_size: int | None = None,
        device: str | None = None,
        ancestor: str | None = None,
        logit_top_k: int = 100,
        **unknown: Any,
    ) -> None:
        super().__init__()
        reject_unknown_args("failtrace-hf", unknown, MODEL_ARGS)
        torch, transformers = _import_hf()
        if not pretrained:
            raise InputError(
                "failtrace-hf: model argument 'pretrained' is required (a local model folder)",
                column="model_args",
            )
        name = str(pretrained)
        self.base_seed = DEFAULT_BASE_SEED if seed is None else int(seed)
        self.max_gen_toks = int(max_gen_toks)
        self.add_bos_token = bool(add_bos_token)
        self.batch_size_per_gpu = parse_batch_size(batch_size)
        if device and device.startswith("cuda") and not torch.cuda.is_available():
            log.warning("failtrace-hf: %s requested but CUDA is unavailable; using cpu", device)
            device = "cpu"
        load = {"trust_remote_code": bool(trust_remote_code), "dtype": dtype}
        self.tokenizer, self.model = _load("pretrained", name, transformers, load)
        self.model.to(device or "cpu").eval()
        self.ancestor = None
        self.logit_top_k = int(logit_top_k)
        if ancestor:
            from lm_failtrace.record.scoring import check_same_tokenizer

            anc_tokenizer, self.ancestor = _load("ancestor", str(ancestor), transformers, load)
            check_same_tokenizer(self.tokenizer, anc_tokenizer)
            self.ancestor.to(device or "cpu").eval()
        self.max_length = int(max_length or self._config_max_length())
        self.vocab = self._vocabulary()

    def get_model_info(self) -> dict[str, Any]:
        """What the model really runs on, for lm-eval's results ``config`` (its hook).

        ``model_device``/``model_dtype`` (lm-eval's own ``device`` key there is its ``--device``
        argument, whatever the backend did with it); ``failtrace log`` logs these as the run's
        device and dtype.
        """
        return {
            "model_device": str(self.model.device),
            "model_dtype": str(self.model.dtype).removeprefix("torch."),
            "model_num_parameters": int(self.model.num_parameters()),
            "logit_top_k": self.logit_top_k if self.ancestor is not None else None,
        }

    def _config_max_length(self) -> int:
        config = self.model.config
        for attr in ("max_position_embeddings", "n_positions", "seq_length"):
            value = getattr(config, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        return 2048

    def _vocabulary(self) -> Any:
        from lm_failtrace.record.backends.decoding import Vocabulary

        eos: set[int] = set()
        for source in (self.model.generation_config.eos_token_id, self.tokenizer.eos_token_id):
            if isinstance(source, int):
                eos.add(source)
            elif source:
                eos.update(int(t) for t in source)
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = min(eos) if eos else 0
        return Vocabulary(frozenset(eos), int(pad))

    def encode_prompt(self, context: str, max_gen_toks: int) -> list[int]:
        """The prompt's token ids exactly as this backend samples from them.

        Special tokens are added as ``add_bos_token`` says, and the oldest tokens are dropped so
        that ``max_gen_toks`` new tokens still fit in ``max_length`` (lm-eval's ``hf`` does the
        same); repair encodes with this so its attempts continue the recorded prompt.

        Raises:
            InputError: ``max_gen_toks`` leaves no room for any prompt token.
        """
        budget = self.max_length - max_gen_toks
        if budget < 1:
            raise InputError(
                f"failtrace-hf: max_gen_toks={max_gen_toks} leaves no room for the "
                f"prompt in max_length={self.max_length}",
                column="gen_kwargs",
            )
        ids = self.tokenizer.encode(context, add_special_tokens=self.add_bos_token)
        return ids[-budget:]

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        """Sample every request, repeats with their own seeds; returns :class:`RolloutText`."""
        from tqdm import tqdm

        from lm_failtrace.record.backends.decoding import sample_batch

        slots = assign_repeats(requests, self.base_seed)  # before any reordering
        settings = []
        for request in requests:
            parsed = GenerationSettings.from_gen_kwargs(request.args[1], self.max_gen_toks)
            reject_unknown_args(
                "failtrace-hf gen_kwargs",
                parsed.extra,
                ("until", "max_gen_toks", "do_sample", "temperature", "top_p", "top_k"),
            )
            settings.append(parsed)
        prompts = [
            self.encode_prompt(r.args[0], s.max_gen_toks)
            for r, s in zip(requests, settings, strict=True)
        ]
        order = sorted(
            range(len(requests)), key=lambda i: (settings[i].cache_key(), -len(prompts[i]), i)
        )
        results: list[RolloutText | None] = [None] * len(requests)
        progress = tqdm(
            total=len(requests), desc="failtrace-hf rollouts", file=sys.stderr, disable=disable_tqdm
        )
        start = 0
        while start < len(order):
            key = settings[order[start]].cache_key()
            batch = [order[start]]
            while (
                start + len(batch) < len(order)
                and len(batch) < self.batch_size_per_gpu
                and settings[order[start + len(batch)]].cache_key() == key
            ):
                batch.append(order[start + len(batch)])
            rollouts = sample_batch(
                self.model,
                self.tokenizer,
                [prompts[i] for i in batch],
                [slots[i].seed for i in batch],
                settings[batch[0]],
                self.vocab,
                observers=self._observers(),
            )
            for i, rollout in zip(batch, rollouts, strict=True):
                results[i] = RolloutText(
                    rollout.text,
                    {
                        "doc_id": slots[i].doc_id,
                        "seed": slots[i].seed,
                        "repeat": slots[i].repeat,
                        "generated_tokens": rollout.generated_tokens,
                        "finish_reason": rollout.finish_reason,
                        **rollout.meta,
                    },
                )
            progress.update(len(batch))
            start += len(batch)
        progress.close()
        return results  # type: ignore[return-value]

    def _observers(self) -> list[Any]:
        """Fresh per-batch observers: the logit-feature recorder when an ancestor is loaded."""
        if self.ancestor is None:
            return []
        from lm_failtrace.record.backends.logit_features import AncestorObserver

        return [AncestorObserver(self.ancestor, self.logit_top_k)]

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[Any]:
        raise InputError(
            "failtrace-hf records generations only: run it on generate_until tasks "
            "(use lm-eval's 'hf' backend for loglikelihood tasks)"
        )

    loglikelihood_rolling = loglikelihood

    @property
    def tokenizer_name(self) -> str:
        return str(self.tokenizer.name_or_path).replace("/", "__")

    def apply_chat_template(
        self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True
    ) -> str:
        return self.tokenizer.apply_chat_template(
            chat_history, tokenize=False, add_generation_prompt=add_generation_prompt
        )
