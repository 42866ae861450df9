"""``failtrace-local-completions``: any OpenAI-compatible completions server (vLLM, SGLang, TGI).

One HTTP request per rollout, each with its own seed (lm-eval's ``local-completions`` sends the
same seed with every repeat, so a server that honours seeds returns N identical samples). The
server's ``finish_reason`` and ``usage.completion_tokens`` are recorded per rollout.

With ``ancestor_url=`` (a second server with the base model, same tokenizer) every rollout also
carries the logit features of docs/method.md section 2, computed by the same function as
``failtrace-hf``'s: the specialist samples from token-id prompts with ``logprobs=K`` (top-K at
every step, tokens as ids), and the ancestor scores each batch of ``ancestor_batch`` rollouts
(prompt + completion ids) in one request. Start-up checks make a server that cannot do this one
error before anything is sampled (:meth:`CompletionsServer.check_white_box`).

Several replica URLs (``base_url=URL1|URL2``) are used round-robin; a failing replica is set
aside and its requests go to the others. With ``journal=PATH`` (``failtrace eval`` sets one under
``--output_path``) every received rollout is kept on disk until the run completes, so a rerun
after a crash resumes (:mod:`lm_failtrace.record.backends.journal`).

The API key comes from, in order: the ``api_key`` model argument (``failtrace eval`` takes it out
of the model arguments before lm-eval can write it anywhere), ``OPENAI_API_KEY``. Credentials in
a URL (``http://user:PASSWORD@host/...``) are sent as HTTP basic auth; ``failtrace eval`` hands
lm-eval the URLs without them, and this backend names servers by their bare URLs only.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from lm_failtrace.errors import InputError
from lm_failtrace.record import secrets
from lm_failtrace.record.backends.generation import (
    GenerationSettings,
    reject_unknown_args,
)
from lm_failtrace.record.backends.journal import Journal, rollout_key
from lm_failtrace.record.backends.seeds import DEFAULT_BASE_SEED, RepeatSlot, assign_repeats
from lm_failtrace.record.backends.server import Completion, CompletionsServer, check_pair
from lm_failtrace.record.logits import TEMPERATURE, logit_features
from lm_failtrace.record.rollout_text import RolloutText

#: Every model argument the backend takes (others are refused by name).
MODEL_ARGS = (
    "base_url",
    "model",
    "ancestor_url",
    "ancestor_model",
    "logit_top_k",
    "ancestor_batch",
    "journal",
    "seed",
    "max_gen_toks",
    "num_concurrent",
    "max_retries",
    "retry_backoff",
    "timeout",
    "api_key",
    "batch_size",
    "max_batch_size",
    "device",
)

#: Top-K log-probs per token on the server path: vLLM's default ``--max-logprobs``.
SERVER_TOP_K = 20

#: Model arguments that change where and how fast rollouts are requested, not what they are.
TRANSPORT_ARGS = frozenset(
    {
        "base_url",
        "ancestor_url",
        "num_concurrent",
        "max_retries",
        "retry_backoff",
        "timeout",
        "ancestor_batch",
        "batch_size",
        "max_batch_size",
        "device",
    }
)


def default_journal(model_args: Mapping[str, Any], folder: Path) -> Path:
    """Where ``failtrace eval`` journals a run recorded into ``folder`` (its --output_path).

    Named by the arguments that determine the rollouts, not by where they are sampled: a rerun
    against other replicas, or with another concurrency, resumes.
    """
    determining = {k: v for k, v in model_args.items() if k not in TRANSPORT_ARGS}
    return folder / f".failtrace-journal-{rollout_key(sorted(determining.items()))[:12]}.jsonl"


@register_model("failtrace-local-completions")
class FailtraceLocalCompletions(LM):
    """Sample an OpenAI-compatible ``/v1/completions`` endpoint, one seed per repeat.

    Args:
        base_url: the full endpoint, e.g. ``http://127.0.0.1:8000/v1/completions``; replicas of
            one model separated by ``|``.
        model: the model name the server expects.
        ancestor_url: the ancestor's endpoint(s) (same tokenizer); enables logit features.
        ancestor_model: the model name the ancestor server expects.
        logit_top_k: log-probs per token asked of both servers (vLLM's ``--max-logprobs``
            caps it; docs/method.md says what the top-K leaves out).
        ancestor_batch: rollouts scored per ancestor request.
        journal: a JSONL file keeping received rollouts until the run completes (``none``: off).
        seed: base seed of the per-repeat seeds (``failtrace eval`` fills it from ``--seed``).
        max_gen_toks: token limit when the task does not set one.
        num_concurrent: requests in flight at once.
        max_retries: retries of a request after a connection error, timeout or HTTP 5xx.
        retry_backoff: seconds before a retry once every replica failed; doubles each time.
        timeout: seconds per request.
        api_key: bearer token (prefer ``OPENAI_API_KEY``); never written to any output.
        batch_size, max_batch_size, device: passed by lm-eval; ignored.
    """

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        ancestor_url: str | None = None,
        ancestor_model: str | None = None,
        logit_top_k: int = SERVER_TOP_K,
        ancestor_batch: int = 16,
        journal: str | None = None,
        seed: int | None = None,
        max_gen_toks: int = 256,
        num_concurrent: int = 1,
        max_retries: int = 3,
        retry_backoff: float = 0.5,
        timeout: float = 300.0,
        api_key: str | None = None,
        batch_size: Any = None,
        max_batch_size: Any = None,
        device: Any = None,
        **unknown: Any,
    ) -> None:
        super().__init__()
        reject_unknown_args("failtrace-local-completions", unknown, MODEL_ARGS)
        if not base_url:
            raise InputError(
                "failtrace-local-completions: model argument 'base_url' is required "
                "(e.g. http://127.0.0.1:8000/v1/completions)",
                column="model_args",
            )
        key = api_key or secrets.private_arg("api_key")
        transport = {
            "api_key": key,
            "timeout": timeout,
            "max_retries": max_retries,
            "retry_backoff": retry_backoff,
        }
        self.server = CompletionsServer(str(base_url), model, "base_url", **transport)
        self.base_url = self.server.name
        self.model = model
        self.logit_top_k = int(logit_top_k)
        self.ancestor_batch = max(1, int(ancestor_batch))
        self.ancestor = None
        if ancestor_url:
            self.ancestor = CompletionsServer(
                str(ancestor_url), ancestor_model, "ancestor_url", **transport
            )
            self._check_white_box()
        self.journal = Journal(journal)
        self.base_seed = DEFAULT_BASE_SEED if seed is None else int(seed)
        self.max_gen_toks = int(max_gen_toks)
        self.num_concurrent = max(1, int(num_concurrent))
        self._prompt_ids: dict[str, list[int]] = {}
        self._prompt_lock = threading.Lock()

    def get_model_info(self) -> dict[str, Any]:
        """What the run's logit features were computed from, for lm-eval's results ``config``.

        The results JSON is the run's metadata beside its side-car: a reader of the features
        learns there that they come from top-K lists of two servers (docs/method.md section 8).
        """
        if self.ancestor is None:
            return {"logit_features": None}
        return {
            "logit_features": "top-K log-probs from two completions servers",
            "logit_top_k": self.logit_top_k,
            "ancestor_scoring": self.ancestor.scoring,
        }

    def _check_white_box(self) -> None:
        """Both servers give what logit features need, and tokenise alike (one error if not)."""
        assert self.ancestor is not None
        if self.logit_top_k < 1:
            raise InputError("logit_top_k must be >= 1", column="model_args")
        check_pair(self.server, self.ancestor, self.logit_top_k)

    def prompt_ids(self, context: str) -> list[int]:
        """The specialist server's token ids of a prompt, asked once per distinct prompt.

        With the tokenizer's special tokens, as the server encodes a text prompt (a BOS on
        Llama-style tokenizers): white-box rollouts are then the black-box rollouts of the
        same seeds.
        """
        with self._prompt_lock:
            cached = self._prompt_ids.get(context)
        if cached is None:
            cached = self.server.tokenize(context, special=True)
            with self._prompt_lock:
                self._prompt_ids[context] = cached
        return cached

    def _sample(
        self, context: str, settings: GenerationSettings, seed: int
    ) -> tuple[list[int], Completion]:
        if self.ancestor is None:
            return [], self.server.complete(context, settings, seed)
        ids = self.prompt_ids(context)
        return ids, self.server.complete(ids, settings, seed, logprobs=self.logit_top_k)

    def _features(self, sampled: list[tuple[list[int], Completion]]) -> list[dict[str, float]]:
        """Logit features of a batch of rollouts: one ancestor request for all of them."""
        if self.ancestor is None:
            return [{} for _ in sampled]
        scored = self.ancestor.score(
            [ids + list(c.token_ids or []) for ids, c in sampled],
            [len(ids) for ids, _ in sampled],
            self.logit_top_k,
        )
        out = []
        for (_, done), anc in zip(sampled, scored, strict=True):
            assert done.top is not None and done.token_ids is not None
            taken = np.asarray(done.token_ids, dtype=np.int64)
            out.append(
                logit_features(
                    taken, done.top.ids, done.top.logprobs, anc.ids, anc.logprobs, TEMPERATURE
                )
            )
        return out

    def _key(self, context: str, settings: GenerationSettings, slot: RepeatSlot) -> str:
        ancestor = None if self.ancestor is None else (self.ancestor.model, self.logit_top_k)
        return rollout_key(
            (
                self.model,
                slot.task,
                slot.doc_id,
                slot.repeat,
                slot.seed,
                context,
                settings.cache_key(),
                sorted(settings.extra.items()),
                ancestor,
            )
        )

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        """Every rollout, with its repeat's seed; returns :class:`RolloutText`.

        Rollouts already in the journal are not requested again; new ones are sampled
        ``num_concurrent`` at a time and journaled batch by batch (``ancestor_batch``).
        """
        from tqdm import tqdm

        slots = assign_repeats(requests, self.base_seed)
        settings = [
            GenerationSettings.from_gen_kwargs(r.args[1], self.max_gen_toks) for r in requests
        ]
        keys = [
            self._key(r.args[0], s, slot)
            for r, s, slot in zip(requests, settings, slots, strict=True)
        ]
        received = self.journal.load()
        todo = [i for i in range(len(requests)) if keys[i] not in received]

        def sample(i: int) -> tuple[list[int], Completion]:
            return self._sample(requests[i].args[0], settings[i], slots[i].seed)

        def batch(rows: list[int], samplers: ThreadPoolExecutor) -> None:
            sampled = list(samplers.map(sample, rows))
            for i, (_, done), features in zip(rows, sampled, self._features(sampled), strict=True):
                meta = {
                    "doc_id": slots[i].doc_id,
                    "seed": slots[i].seed,
                    "repeat": slots[i].repeat,
                    "generated_tokens": done.completion_tokens,
                    "finish_reason": done.finish_reason,
                    **features,
                }
                received[keys[i]] = {"text": done.text, "meta": meta}
                self.journal.append(keys[i], done.text, meta)
            progress.update(len(rows))

        size = self.ancestor_batch
        chunks = [todo[k : k + size] for k in range(0, len(todo), size)]
        with (
            tqdm(
                total=len(requests),
                initial=len(requests) - len(todo),
                desc="failtrace-local-completions",
                file=sys.stderr,
                disable=disable_tqdm,
            ) as progress,
            ThreadPoolExecutor(self.num_concurrent) as samplers,
            ThreadPoolExecutor(1 + -(-self.num_concurrent // size)) as batches,
        ):
            futures = [batches.submit(batch, rows, samplers) for rows in chunks]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                for future in futures:  # what was received is journaled; stop asking
                    future.cancel()
                raise
        self.journal.remove()
        return [RolloutText(received[k]["text"], received[k]["meta"]) for k in keys]

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[Any]:
        raise InputError(
            "failtrace-local-completions records generations only: run it on generate_until tasks"
        )

    loglikelihood_rolling = loglikelihood
