"""One OpenAI-compatible completions server, as recording and repair talk to it.

A :class:`CompletionsServer` is one model behind one or more replica URLs (vLLM data-parallel
replicas, several pods behind no load balancer): requests go round-robin over the replicas that
answer; a replica that refuses connections, times out, drops the connection mid-reply or
answers 5xx is set aside for :data:`COOLDOWN_S` seconds and the request moves to the next one,
with exponential backoff once every replica has failed it. Only when ``max_retries + 1``
attempts have failed is the request an error (naming the model argument, e.g. ``ancestor_url``).

Besides plain completions, the white-box path (logit features and steering through servers) needs
what vLLM's completions API carries (see docs/method.md, *Logit features through servers*):

- token-id prompts (``prompt`` as a list of ids) and ``/tokenize`` / ``/detokenize``, so nothing
  is re-tokenised between the specialist and the ancestor;
- ``logprobs=K`` with ``return_tokens_as_token_ids``: the top-K T=1 log-probs at every sampled
  step, tokens named ``"token_id:N"``;
- ``prompt_logprobs=K`` (vLLM) or, failing that, ``echo`` with ``logprobs=K`` (the classic
  OpenAI way): the top-K log-probs at every position of a given token sequence.

:meth:`CompletionsServer.check_white_box` probes all three at start, so a server that cannot
answer is one clear error before any rollout is sampled.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lm_failtrace.errors import InputError
from lm_failtrace.record import secrets
from lm_failtrace.record.backends.generation import GenerationSettings, truncate_at_stop
from lm_failtrace.record.logits import ABSENT_LOGPROB

#: Seconds a failed replica is skipped before it gets requests again.
COOLDOWN_S = 30.0
#: Text whose tokenisation the two servers of a white-box run must agree on (digits, spaces,
#: punctuation, a newline, non-ASCII), checked at start.
PROBE_TEXT = "Question: 12 + 7 = 19, then x3?\nAnswer: #### 57 (café, naïve)"
#: Replica URLs in one model argument are separated by this (lm-eval splits model arguments on
#: commas).
REPLICA_SEPARATOR = "|"
#: Ancestor scoring modes, in the order they are tried.
SCORING_MODES = ("prompt_logprobs", "echo")

#: Server finish reasons mapped onto ours; anything else is recorded as unknown (None).
FINISH_REASONS = {
    "stop": "stop",
    "eos": "stop",
    "eos_token": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "max_tokens": "length",
    "model_length": "length",
}


class ServerRefused(InputError):
    """A server answered a request with HTTP 4xx; the message quotes it."""


@dataclass
class TopK:
    """Top-K token ids and T=1 log-probs at consecutive positions, shape (L, K).

    Positions with fewer entries than others are padded with id -1 and log-prob
    :data:`~lm_failtrace.record.logits.ABSENT_LOGPROB`, which carry no mass in any quantity of
    :mod:`lm_failtrace.record.logits`.
    """

    ids: np.ndarray
    logprobs: np.ndarray

    @classmethod
    def from_entries(cls, entries: Sequence[dict[int, float]]) -> TopK:
        """From one ``{token id: log-prob}`` dict per position (largest first after sorting)."""
        width = max((len(e) for e in entries), default=0)
        ids = np.full((len(entries), width), -1, dtype=np.int64)
        logprobs = np.full((len(entries), width), ABSENT_LOGPROB, dtype=np.float64)
        for row, entry in enumerate(entries):
            ranked = sorted(entry.items(), key=lambda kv: -kv[1])
            ids[row, : len(ranked)] = [k for k, _ in ranked]
            logprobs[row, : len(ranked)] = [v for _, v in ranked]
        return cls(ids, logprobs)

    def __len__(self) -> int:
        return int(self.ids.shape[0])


@dataclass
class Completion:
    """One completion as the server returned it.

    Attributes:
        text: the text, cut at the first stop string (in case the server ignored ``stop``).
        completion_tokens: the server's ``usage.completion_tokens`` (None if it did not say).
        finish_reason: ``stop``/``length``, None when unknown.
        token_ids: the sampled tokens (white-box requests only; the ending token included, as
            vLLM returns it).
        top: the top-K log-probs at every sampled step (requests with ``logprobs``).
    """

    text: str
    completion_tokens: int | None
    finish_reason: str | None
    token_ids: list[int] | None = None
    top: TopK | None = None


def _token_id(name: str, url: str) -> int:
    """``"token_id:N"`` -> N; anything else: the server ignored ``return_tokens_as_token_ids``."""
    head, _, number = str(name).partition(":")
    if head != "token_id" or not number.lstrip("-").isdigit():
        raise InputError(
            f"completions server {url} returned the token {name!r} instead of 'token_id:N': it "
            "ignores return_tokens_as_token_ids (vLLM's extension), which logit features and "
            "steering need"
        )
    return int(number)


def _top_entries(top: Sequence[Any], url: str) -> list[dict[int, float]]:
    """A ``top_logprobs`` list (``{"token_id:N": log-prob}`` per position) as id dicts."""
    return [{_token_id(k, url): float(v) for k, v in (step or {}).items()} for step in top]


def _replicas(value: str, argument: str) -> list[tuple[str, tuple[str, str] | None]]:
    """Replica URLs and their basic-auth pairs, from one model argument (``URL|URL|...``)."""
    private = secrets.private_arg(argument)  # the URLs with credentials, hidden from lm-eval
    if private is not None and secrets.strip_userinfo_all(private) == value:
        value = private
    out = []
    for url in (u.strip() for u in value.split(REPLICA_SEPARATOR)):
        if not url:
            raise InputError(f"an empty URL in {argument}={value!r}", column="model_args")
        bare, userinfo = secrets.strip_userinfo(url)
        out.append((bare, secrets.basic_auth(userinfo)))
    return out


class CompletionsServer:
    """One model served at one or more replica URLs (see the module docstring).

    Args:
        urls: the completions endpoints (``http://host:8000/v1/completions``), several separated
            by ``|``; credentials in a URL are sent as HTTP basic auth and never printed.
        model: the model name the server expects (``None``: the server's only model).
        argument: the model argument the URLs came from, named in errors.
        api_key: bearer token (default ``OPENAI_API_KEY``).
        timeout: seconds per request.
        max_retries: retries of a request after a connection error, timeout or 5xx.
        retry_backoff: seconds before the first retry once every replica failed; doubles.
    """

    def __init__(
        self,
        urls: str,
        model: str | None = None,
        argument: str = "base_url",
        api_key: str | None = None,
        timeout: float = 300.0,
        max_retries: int = 3,
        retry_backoff: float = 0.5,
    ) -> None:
        self.replicas = _replicas(str(urls), argument)
        self.urls = [url for url, _ in self.replicas]
        self.model = model
        self.argument = argument
        self.timeout = float(timeout)
        self.max_retries = max(0, int(max_retries))
        self.retry_backoff = float(retry_backoff)
        self._api_key = api_key or os.environ.get("OPENAI_API_KEY")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._turn = itertools.cycle(range(len(self.replicas)))
        self._down_until = [0.0] * len(self.replicas)
        self.scoring: str | None = None

    @property
    def name(self) -> str:
        """The server as errors and logs name it: its bare URL(s), never credentials."""
        return REPLICA_SEPARATOR.join(self.urls)

    # -- transport ---------------------------------------------------------------------------

    def _session(self, replica: int) -> Any:
        import requests

        sessions = self._local.__dict__.setdefault("sessions", {})
        if replica not in sessions:
            session = requests.Session()
            session.auth = self.replicas[replica][1]
            if self._api_key:
                session.headers["Authorization"] = f"Bearer {self._api_key}"
            sessions[replica] = session
        return sessions[replica]

    def _next_replica(self) -> int:
        """The next replica in turn that is not cooling down (all cooling: the next in turn)."""
        with self._lock:
            now = time.monotonic()
            for _ in range(len(self.replicas)):
                replica = next(self._turn)
                if self._down_until[replica] <= now:
                    return replica
            return next(self._turn)

    def _set_aside(self, replica: int) -> None:
        with self._lock:
            self._down_until[replica] = time.monotonic() + COOLDOWN_S

    def post(self, payload: dict[str, Any], endpoint: str = "completions") -> dict[str, Any]:
        """POST to a replica's ``/v1/completions`` (or the server root's ``/tokenize`` etc.).

        Raises:
            InputError: every attempt failed, the server refused the request (4xx, with its
                message) or answered with something that is not JSON.
        """
        import requests

        if self.model and "model" not in payload:
            payload = {"model": self.model, **payload}
        problem = ""
        for attempt in range(self.max_retries + 1):
            replica = self._next_replica()
            if attempt >= len(self.replicas):
                time.sleep(self.retry_backoff * 2 ** (attempt - len(self.replicas)))
            url = self._endpoint(replica, endpoint)
            try:
                response = self._session(replica).post(url, json=payload, timeout=self.timeout)
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,  # died mid-reply: body cut short
            ) as exc:
                problem = f"{type(exc).__name__} from {self.urls[replica]}"
                self._set_aside(replica)
                continue
            if response.status_code >= 500:
                problem = f"HTTP {response.status_code} from {self.urls[replica]}"
                self._set_aside(replica)
                continue
            return self._json(response, url)
        raise InputError(
            f"cannot reach the completions server at {self.name} ({problem}, after "
            f"{self.max_retries + 1} attempts); check {self.argument} and that the server is "
            "running",
            column=self.argument,
        )

    def _endpoint(self, replica: int, endpoint: str) -> str:
        url = self.urls[replica]
        if endpoint == "completions":
            return url
        root = url.removesuffix("/").removesuffix("/completions").removesuffix("/v1")
        return f"{root}/{endpoint}"

    def _json(self, response: Any, url: str) -> dict[str, Any]:
        if response.status_code >= 400:
            raise ServerRefused(
                f"completions server {url} refused the request: HTTP {response.status_code}: "
                f"{response.text[:300]}",
                column=self.argument,
            )
        try:
            data = response.json()
        except ValueError:
            raise InputError(
                f"completions server {url} returned non-JSON: {response.text[:200]!r}",
                column=self.argument,
            ) from None
        if not isinstance(data, dict):
            raise InputError(
                f"completions server {url} returned {type(data).__name__}, not an object"
            )
        return data

    # -- requests ----------------------------------------------------------------------------

    def complete(
        self,
        prompt: str | Sequence[int],
        settings: GenerationSettings,
        seed: int,
        logprobs: int | None = None,
    ) -> Completion:
        """One completion of ``prompt`` (text, or token ids), with top-K log-probs if asked.

        Raises:
            InputError: as :meth:`post`, or the answer is not in the completions schema.
        """
        payload: dict[str, Any] = {
            "prompt": prompt if isinstance(prompt, str) else list(prompt),
            "max_tokens": settings.max_gen_toks,
            "temperature": settings.temperature,
            "seed": seed,
            **settings.extra,
        }
        if settings.until:
            payload["stop"] = list(settings.until)
        if settings.top_p is not None:
            payload["top_p"] = settings.top_p
        if settings.top_k is not None:
            payload["top_k"] = settings.top_k
        if logprobs is not None:
            payload["logprobs"] = logprobs
            payload["return_tokens_as_token_ids"] = True
        choice, usage = self._first_choice(self.post(payload))
        text, stopped = truncate_at_stop(str(choice["text"]), settings.until)
        finish = "stop" if stopped else FINISH_REASONS.get(str(choice.get("finish_reason")))
        tokens = usage.get("completion_tokens")
        completion = Completion(text, tokens if isinstance(tokens, int) else None, finish)
        if logprobs is not None:
            completion.token_ids, completion.top = self._sampled_logprobs(choice)
        return completion

    def _first_choice(self, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            choice = data["choices"][0]
            str(choice["text"])
        except (KeyError, IndexError, TypeError):
            raise InputError(
                f"completions server {self.name} did not answer in the OpenAI completions "
                "schema (no choices[0].text)",
                column=self.argument,
            ) from None
        return choice, data.get("usage") or {}

    def _sampled_logprobs(self, choice: dict[str, Any]) -> tuple[list[int], TopK]:
        """The sampled token ids and their steps' top-K, from a choice's ``logprobs``."""
        block = choice.get("logprobs") or {}
        names, top = block.get("tokens"), block.get("top_logprobs")
        if not isinstance(names, list) or not isinstance(top, list) or len(names) != len(top):
            raise InputError(
                f"completions server {self.name} returned no per-token logprobs (logprobs.tokens "
                "and logprobs.top_logprobs); logit features and steering need a server that "
                "returns them (vLLM: --max-logprobs >= the requested K)",
                column=self.argument,
            )
        ids = [_token_id(n, self.name) for n in names]
        return ids, TopK.from_entries(_top_entries(top, self.name))

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        """The server's token ids of ``text`` via ``/tokenize``.

        Args:
            special: add the tokenizer's special tokens (a BOS), as the server does to a text
                prompt; prompts need them, completions and probe texts do not.
        """
        data = self.post({"prompt": text, "add_special_tokens": special}, endpoint="tokenize")
        tokens = data.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise InputError(
                f"completions server {self.name} has no vLLM-style /tokenize endpoint "
                "(POST {'prompt': text} -> {'tokens': [ids]}); logit features and steering need it",
                column=self.argument,
            )
        return tokens

    def detokenize(self, ids: Sequence[int]) -> str:
        """The text of token ids, via ``/detokenize`` (vLLM)."""
        data = self.post({"tokens": list(ids)}, endpoint="detokenize")
        text = data.get("prompt")
        if not isinstance(text, str):
            raise InputError(
                f"completions server {self.name} has no vLLM-style /detokenize endpoint",
                column=self.argument,
            )
        return text

    def score(
        self, sequences: Sequence[Sequence[int]], starts: Sequence[int], k: int
    ) -> list[TopK]:
        """Teacher-forced top-K at positions ``starts[i]:`` of each token sequence, one request.

        Position ``p``'s entry is the distribution of the token at ``p`` given tokens ``< p``
        (so ``starts[i]`` is the prompt length when scoring a completion). Uses vLLM's
        ``prompt_logprobs`` or ``echo`` with ``logprobs``, as :meth:`check_white_box` found.
        """
        if not sequences:
            return []
        mode = self.scoring or SCORING_MODES[0]
        payload: dict[str, Any] = {
            "prompt": [list(s) for s in sequences],
            "max_tokens": 1,
            "temperature": 0.0,
        }
        if mode == "prompt_logprobs":
            payload.update(prompt_logprobs=k)
        else:
            payload.update(echo=True, logprobs=k, return_tokens_as_token_ids=True)
        data = self.post(payload)
        choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
        if len(choices) != len(sequences):
            raise InputError(
                f"completions server {self.name} answered {len(choices)} choices for "
                f"{len(sequences)} prompts",
                column=self.argument,
            )
        return [
            self._positions(choice, mode, seq, start)
            for choice, seq, start in zip(choices, sequences, starts, strict=True)
        ]

    def _positions(self, choice: dict[str, Any], mode: str, seq: Sequence[int], start: int) -> TopK:
        if mode == "prompt_logprobs":
            per_token = choice.get("prompt_logprobs")
            if not isinstance(per_token, list) or len(per_token) < len(seq):
                raise self._no_scoring()
            entries = [
                {int(t): float(v["logprob"]) for t, v in (e or {}).items()} for e in per_token
            ]
        else:
            block = choice.get("logprobs") or {}
            top = block.get("top_logprobs")
            if not isinstance(top, list) or len(top) < len(seq):
                raise self._no_scoring()
            entries = _top_entries(top, self.name)
        return TopK.from_entries(entries[start : len(seq)])

    def _no_scoring(self) -> InputError:
        return InputError(
            f"completions server {self.name} cannot score a given text: it returns neither "
            "prompt_logprobs (vLLM) nor per-token logprobs of an echoed prompt",
            column=self.argument,
        )

    def check_white_box(self, k: int) -> list[int]:
        """Probe what logit features and steering need; one clear error for what is missing.

        Checks ``/tokenize``, sampled top-K log-probs as token ids (and that the server returns
        ``k`` of them), and finds a way to score a given text (``self.scoring``).

        Returns:
            the server's tokens of :data:`PROBE_TEXT`, for :func:`check_pair`.
        """
        ids = self.tokenize(PROBE_TEXT)
        probe = GenerationSettings((), 2, 1.0)
        try:
            sampled = self.complete(ids, probe, seed=0, logprobs=k)
        except ServerRefused as exc:  # vLLM: HTTP 400 when K > --max-logprobs
            raise InputError(
                f"{exc.message}; it was asked for logit_top_k={k} log-probs per token (as token "
                f"ids): lower logit_top_k or raise the server's limit (vLLM: --max-logprobs {k})",
                column=self.argument,
            ) from None
        assert sampled.top is not None
        if len(sampled.top) and sampled.top.ids.shape[1] < k:
            raise InputError(
                f"completions server {self.name} returned {sampled.top.ids.shape[1]} log-probs "
                f"per token where {k} were asked (vLLM: --max-logprobs {k}); lower logit_top_k "
                "or raise the server's limit",
                column=self.argument,
            )
        for mode in SCORING_MODES:
            self.scoring = mode
            try:
                scored = self.score([ids], [1], k)
            except InputError:
                continue
            if len(scored[0]) == len(ids) - 1:
                return ids
        self.scoring = None
        raise self._no_scoring()


def check_pair(specialist: CompletionsServer, ancestor: CompletionsServer, k: int) -> None:
    """Probe both servers (:meth:`~CompletionsServer.check_white_box`), then check that they
    tokenise alike: the quantities compare token by token."""
    if specialist.check_white_box(k) != ancestor.check_white_box(k):
        raise InputError(
            f"the ancestor server {ancestor.name} tokenises a probe text differently from the "
            f"specialist server {specialist.name}; logit features and steering need the same "
            "tokenizer on both",
            column="ancestor_url",
        )
