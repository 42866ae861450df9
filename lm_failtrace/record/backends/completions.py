"""``failtrace-local-completions``: any OpenAI-compatible completions server (vLLM, llama.cpp, TGI).

One HTTP request per rollout, each with its own seed (lm-eval's ``local-completions`` sends the
same seed with every repeat, so a server that honours seeds returns N identical samples). The
server's ``finish_reason`` and ``usage.completion_tokens`` are recorded per rollout.

The API key comes from, in order: the ``api_key`` model argument (``failtrace eval`` takes it out
of the model arguments before lm-eval can write it anywhere), ``OPENAI_API_KEY``. Credentials in
``base_url`` (``http://user:PASSWORD@host/...``) are sent as HTTP basic auth; ``failtrace eval``
hands lm-eval the URL without them, and this backend names the server by that bare URL only.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from lm_failtrace.errors import InputError
from lm_failtrace.record import secrets
from lm_failtrace.record.backends.generation import (
    GenerationSettings,
    reject_unknown_args,
    truncate_at_stop,
)
from lm_failtrace.record.backends.seeds import DEFAULT_BASE_SEED, assign_repeats
from lm_failtrace.record.rollout_text import RolloutText

#: Every model argument the backend takes (others are refused by name).
MODEL_ARGS = (
    "base_url",
    "model",
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

#: Server finish reasons mapped onto ours; anything else is recorded as unknown (None).
_FINISH_REASONS = {
    "stop": "stop",
    "eos": "stop",
    "eos_token": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "max_tokens": "length",
    "model_length": "length",
}


@register_model("failtrace-local-completions")
class FailtraceLocalCompletions(LM):
    """Sample an OpenAI-compatible ``/v1/completions`` endpoint, one seed per repeat.

    Args:
        base_url: the full endpoint, e.g. ``http://127.0.0.1:8000/v1/completions``.
        model: the model name the server expects.
        seed: base seed of the per-repeat seeds (``failtrace eval`` fills it from ``--seed``).
        max_gen_toks: token limit when the task does not set one.
        num_concurrent: requests in flight at once.
        max_retries: retries of a request after a connection error, timeout or HTTP 5xx.
        retry_backoff: seconds before the first retry; doubles each time.
        timeout: seconds per request.
        api_key: bearer token (prefer ``OPENAI_API_KEY``); never written to any output.
        batch_size, max_batch_size, device: passed by lm-eval; ignored.
    """

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
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
        url = str(base_url)
        private = secrets.private_arg("base_url")  # the URL with credentials, hidden from lm-eval
        if private is not None and secrets.strip_userinfo(private)[0] == url:
            url = private
        self.base_url, userinfo = secrets.strip_userinfo(url)
        self._auth = secrets.basic_auth(userinfo)
        self.model = model
        self.base_seed = DEFAULT_BASE_SEED if seed is None else int(seed)
        self.max_gen_toks = int(max_gen_toks)
        self.num_concurrent = max(1, int(num_concurrent))
        self.max_retries = max(0, int(max_retries))
        self.retry_backoff = float(retry_backoff)
        self.timeout = float(timeout)
        self._api_key = (
            api_key or secrets.private_arg("api_key") or os.environ.get("OPENAI_API_KEY")
        )
        self._local = threading.local()

    def _session(self) -> Any:
        import requests

        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
            self._local.session.auth = self._auth
            if self._api_key:
                self._local.session.headers["Authorization"] = f"Bearer {self._api_key}"
        return self._local.session

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST with retries and exponential backoff on connection errors, timeouts and 5xx."""
        import requests

        problem = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.retry_backoff * 2 ** (attempt - 1))
            try:
                response = self._session().post(self.base_url, json=payload, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = f"{type(exc).__name__}"
                continue
            if response.status_code >= 500:
                problem = f"HTTP {response.status_code}"
                continue
            if response.status_code >= 400:
                raise InputError(
                    f"completions server {self.base_url} refused the request: HTTP "
                    f"{response.status_code}: {response.text[:300]}",
                    column="base_url",
                )
            try:
                return response.json()
            except ValueError:
                raise InputError(
                    f"completions server {self.base_url} returned non-JSON: "
                    f"{response.text[:200]!r}",
                    column="base_url",
                ) from None
        raise InputError(
            f"cannot reach the completions server at {self.base_url} ({problem} after "
            f"{self.max_retries + 1} attempts); check base_url and that the server is running",
            column="base_url",
        )

    def complete(
        self, context: str, settings: GenerationSettings, seed: int
    ) -> tuple[str, int | None, str | None]:
        """One rollout from the server, as recording gets it (repair's attempts use this too).

        Returns:
            the text (cut at the first stop string, in case the server ignored ``stop``), the
            server's completion token count and our finish reason (``stop``/``length``); either
            is ``None`` when the server did not say.

        Raises:
            InputError: the server is unreachable, refuses the request or answers out of schema.
        """
        payload: dict[str, Any] = {
            "prompt": context,
            "max_tokens": settings.max_gen_toks,
            "temperature": settings.temperature,
            "seed": seed,
            **settings.extra,
        }
        if self.model:
            payload["model"] = self.model
        if settings.until:
            payload["stop"] = list(settings.until)
        if settings.top_p is not None:
            payload["top_p"] = settings.top_p
        if settings.top_k is not None:
            payload["top_k"] = settings.top_k
        data = self._post(payload)
        try:
            choice = data["choices"][0]
            text = str(choice["text"])
        except (KeyError, IndexError, TypeError):
            raise InputError(
                f"completions server {self.base_url} did not answer in the OpenAI "
                f"completions schema (no choices[0].text)",
                column="base_url",
            ) from None
        finish = _FINISH_REASONS.get(str(choice.get("finish_reason")))
        text, stopped = truncate_at_stop(text, settings.until)
        if stopped:  # the server ignored `stop`; we cut, so the rollout did stop there
            finish = "stop"
        usage = data.get("usage") or {}
        tokens = usage.get("completion_tokens")
        return text, (int(tokens) if isinstance(tokens, int) else None), finish

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        """One request per rollout, each with its repeat's seed; returns :class:`RolloutText`."""
        from tqdm import tqdm

        slots = assign_repeats(requests, self.base_seed)
        settings = [
            GenerationSettings.from_gen_kwargs(r.args[1], self.max_gen_toks) for r in requests
        ]

        def one(i: int) -> RolloutText:
            text, tokens, finish = self.complete(requests[i].args[0], settings[i], slots[i].seed)
            return RolloutText(
                text,
                {
                    "doc_id": slots[i].doc_id,
                    "seed": slots[i].seed,
                    "repeat": slots[i].repeat,
                    "generated_tokens": tokens,
                    "finish_reason": finish,
                },
            )

        with ThreadPoolExecutor(self.num_concurrent) as pool:
            return list(
                tqdm(
                    pool.map(one, range(len(requests))),
                    total=len(requests),
                    desc="failtrace-local-completions",
                    file=sys.stderr,
                    disable=disable_tqdm,
                )
            )

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[Any]:
        raise InputError(
            "failtrace-local-completions records generations only: run it on generate_until tasks"
        )

    loglikelihood_rolling = loglikelihood
