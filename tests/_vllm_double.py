"""A TEST DOUBLE of vLLM's OpenAI-compatible completions server, serving a Hugging Face model.

vLLM needs a GPU and cannot run on the machines the tests run on. This process stands in for it:
a real HTTP server (its own process, real sockets) that serves a real model, the bundled tiny
pair, through the request and response fields of vLLM's ``/v1/completions``, ``/tokenize`` and
``/detokenize`` that lm-failtrace's server path uses:

- ``prompt``: a string, a list of token ids, or a list of either (one choice per prompt);
- ``max_tokens``, ``temperature``, ``top_p``, ``top_k``, ``stop``, ``seed`` (``seed`` makes a
  sample reproducible: it seeds the row's uniforms exactly as ``failtrace-hf`` does);
- ``logprobs=K`` (at most ``--max-logprobs``, else HTTP 400 as vLLM): per generated token the
  top-K **T=1** log-probs (vLLM's default ``raw_logprobs`` mode) plus the sampled token;
  ``return_tokens_as_token_ids`` names tokens ``"token_id:N"``;
- ``echo`` (with ``logprobs``: the prompt's per-token log-probs too, the first ``None``) and
  vLLM's ``prompt_logprobs=K`` (``{id: {logprob, rank, decoded_token}}`` per prompt token);
- the ending token (end-of-sequence, or the one completing a stop string) is among the returned
  tokens and counted in ``usage.completion_tokens``; the stop string is not in the text.

Sampling is ``failtrace-hf``'s own loop (:func:`lm_failtrace.record.backends.decoding.
sample_batch`, one request per batch), so a server rollout with seed ``s`` is the HF backend's
rollout with seed ``s``.

Switches that make it a *deficient* server, for the start-up checks: ``--no-logprobs``,
``--no-prompt-logprobs``, ``--no-echo``; ``--die-after N`` exits abruptly (no reply) on the
``N+1``-th completion request, as a killed replica does. ``--request-log FILE`` appends one JSON
line per completion request it answered (``seed``, ``prompts``, ``logprobs``, ``prompt_logprobs``,
``echo``), so a test can tell which requests reached which server.

Run: ``python tests/_vllm_double.py --model DIR [--port 0] [--max-logprobs 20]``; it prints
``READY <port>`` on stdout once it listens. :func:`serve` starts one from a test.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

VLLM_DEFAULT_MAX_LOGPROBS = 20


def _top_k(logits: Any, taken: Any, k: int) -> list[tuple[list, list, float]]:
    """Per row of ``[N, V]`` logits: the top-K ids and T=1 log-probs, and the log-prob of the
    row's ``taken`` token (what vLLM returns per position)."""
    import torch

    logp = torch.log_softmax(logits.float(), dim=-1)
    values, ids = torch.topk(logp, min(k, logp.shape[-1]), dim=-1)
    chosen = logp.gather(-1, taken.unsqueeze(-1)).squeeze(-1)
    return list(zip(ids.tolist(), values.tolist(), chosen.tolist(), strict=True))


class _TopKRecorder:
    """A generation observer keeping each step's top-K T=1 log-probs and the sampled token's."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.steps: list[tuple[list, list, float]] = []

    def on_step(self, step: int, logits: Any, tokens: Any, active: Any) -> None:
        self.steps.append(_top_k(logits, tokens.clamp(min=0), self.k)[0])

    def finish(self, prompts: Sequence[Sequence[int]], generated: Sequence[Sequence[int]]) -> list:
        return [{}]


class Model:
    """The served model: ``failtrace-hf``'s backend object, used for its model and loop."""

    def __init__(self, path: str) -> None:
        from lm_failtrace.record.backends.hf import FailtraceHF

        self.backend = FailtraceHF(pretrained=path, dtype="float32")
        self.tokenizer = self.backend.tokenizer
        self.lock = threading.Lock()
        self._pieces: dict[int, str] = {}

    def piece(self, token: int) -> str:
        """One token's text (memoised: the logprobs blocks name every top-K entry)."""
        text = self._pieces.get(token)
        if text is None:
            text = self._pieces[token] = self.tokenizer.decode([token])
        return text

    def token_name(self, token: int, as_ids: bool) -> str:
        return f"token_id:{token}" if as_ids else self.piece(token)

    def generate(self, ids: list[int], body: dict[str, Any]) -> tuple[Any, list | None]:
        from lm_failtrace.record.backends.decoding import sample_batch
        from lm_failtrace.record.backends.generation import GenerationSettings

        stop = body.get("stop") or ()
        stop = (stop,) if isinstance(stop, str) else tuple(stop)
        settings = GenerationSettings(
            stop,
            int(body.get("max_tokens", 16)),
            float(body.get("temperature", 1.0)),
            body.get("top_p"),
            body.get("top_k") if body.get("top_k", -1) not in (-1, None) else None,
        )
        seed = body.get("seed")
        seed = random.randrange(2**31) if seed is None else int(seed)
        recorder = _TopKRecorder(int(body["logprobs"])) if body.get("logprobs") else None
        with self.lock:
            (rollout,) = sample_batch(
                self.backend.model,
                self.tokenizer,
                [ids],
                [seed],
                settings,
                self.backend.vocab,
                observers=[recorder] if recorder else (),
            )
        return rollout, None if recorder is None else recorder.steps

    def prompt_topk(self, ids: list[int], k: int) -> list[tuple[list, list, float] | None]:
        """Teacher-forced top-K and the actual token's log-prob at every prompt position."""
        import torch

        with self.lock, torch.inference_mode():
            logits = self.backend.model(input_ids=torch.tensor([ids])).logits[0]
        return [None, *_top_k(logits[:-1], torch.tensor(ids[1:]), k)]  # row p - 1 predicts p


class Switches(NamedTuple):
    served_name: str
    max_logprobs: int
    logprobs: bool
    prompt_logprobs: bool
    echo: bool
    die_after: int | None
    request_log: str | None = None


def _legacy_logprobs(
    model: Model, tokens: Sequence[int], steps: Sequence[Any], as_ids: bool
) -> dict[str, Any]:
    """The OpenAI completions ``logprobs`` block (tokens, token_logprobs, top_logprobs)."""
    names, token_lps, top = [], [], []
    offset, offsets = 0, []
    for token, step in zip(tokens, steps, strict=True):
        name = model.token_name(token, as_ids)
        names.append(name)
        offsets.append(offset)
        offset += len(model.piece(token))
        if step is None:
            token_lps.append(None)
            top.append(None)
            continue
        ids, values, taken = step
        entry = {model.token_name(i, as_ids): v for i, v in zip(ids, values, strict=True)}
        entry.setdefault(name, taken)  # the sampled token is always included
        token_lps.append(taken)
        top.append(entry)
    return {
        "tokens": names,
        "token_logprobs": token_lps,
        "top_logprobs": top,
        "text_offset": offsets,
    }


class _Handler(BaseHTTPRequestHandler):
    model: Model
    switches: Switches
    served = 0
    counter_lock = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send(
            status, {"error": {"message": message, "type": "BadRequestError", "code": status}}
        )

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, {})
        elif self.path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": self.switches.served_name}]})
        else:
            self._error(404, "not found")

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        name = body.get("model")
        if name is not None and name != self.switches.served_name:
            self._error(404, f"The model `{name}` does not exist.")
            return
        tok = self.model.tokenizer
        if self.path == "/tokenize":
            special = bool(body.get("add_special_tokens", True))
            tokens = tok.encode(body["prompt"], add_special_tokens=special)
            self._send(200, {"tokens": tokens, "count": len(tokens), "max_model_len": 4096})
        elif self.path == "/detokenize":
            self._send(200, {"prompt": tok.decode(body["tokens"])})
        elif self.path == "/v1/completions":
            self._completions(body)
        else:
            self._error(404, "not found")

    def _completions(self, body: dict[str, Any]) -> None:
        switches = self.switches
        with self.counter_lock:
            type(self).served += 1
            if switches.die_after is not None and type(self).served > switches.die_after:
                os._exit(1)  # a killed replica: the connection drops with no reply
        k = body.get("logprobs")
        if k is not None and int(k) > switches.max_logprobs:
            self._error(
                400,
                f"Requested sample logprobs of {k}, which is greater than max "
                f"allowed: {switches.max_logprobs}",
            )
            return
        prompts = body["prompt"]
        if isinstance(prompts, str) or (prompts and isinstance(prompts[0], int)):
            prompts = [prompts]
        choices, used, prompt_tokens = [], 0, 0
        for index, prompt in enumerate(prompts):
            ids = self.model.tokenizer.encode(prompt) if isinstance(prompt, str) else list(prompt)
            choice, n = self._choice(index, ids, body)
            choices.append(choice)
            used += n
            prompt_tokens += len(ids)
        reply = {
            "id": f"cmpl-{time.time_ns()}",
            "object": "text_completion",
            "model": switches.served_name,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": used,
                "total_tokens": prompt_tokens + used,
            },
        }
        with self.counter_lock:  # sent and logged whole, never cut by a --die-after exit
            self._send(200, reply)
            self._log(body, len(prompts))

    def _log(self, body: dict[str, Any], prompts: int) -> None:
        """One line per answered completion request in ``--request-log`` (if given)."""
        if self.switches.request_log is None:
            return
        keys = ("seed", "logprobs", "prompt_logprobs", "echo")
        line = json.dumps({"prompts": prompts, **{k: body.get(k) for k in keys}}) + "\n"
        with open(self.switches.request_log, "a", encoding="utf-8") as fh:
            fh.write(line)

    def _choice(self, index: int, ids: list[int], body: dict[str, Any]) -> tuple[dict, int]:
        model, switches = self.model, self.switches
        rollout, steps = model.generate(ids, body)
        as_ids = bool(body.get("return_tokens_as_token_ids"))
        echo = bool(body.get("echo")) and switches.echo
        text = rollout.text
        choice: dict[str, Any] = {
            "index": index,
            "finish_reason": rollout.finish_reason,
            "logprobs": None,
            "stop_reason": None,
        }
        if steps is not None and switches.logprobs:
            tokens, all_steps = list(rollout.token_ids), list(steps)
            if echo:
                prompt_steps = model.prompt_topk(ids, int(body["logprobs"]))
                tokens, all_steps = ids + tokens, prompt_steps + all_steps
            choice["logprobs"] = _legacy_logprobs(model, tokens, all_steps, as_ids)
        if echo:
            text = model.tokenizer.decode(ids) + text
        choice["text"] = text
        k = body.get("prompt_logprobs")
        if k is not None and switches.prompt_logprobs:
            per_token: list[Any] = []
            for token, step in zip(ids, model.prompt_topk(ids, int(k)), strict=True):
                if step is None:
                    per_token.append(None)
                    continue
                top, values, taken = step
                entry = {
                    str(t): {
                        "logprob": v,
                        "rank": r + 1,
                        "decoded_token": model.piece(t),
                    }
                    for r, (t, v) in enumerate(zip(top, values, strict=True))
                }
                entry.setdefault(
                    str(token),
                    {
                        "logprob": taken,
                        "rank": None,
                        "decoded_token": model.piece(token),
                    },
                )
                per_token.append(entry)
            choice["prompt_logprobs"] = per_token
        return choice, len(rollout.token_ids)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Test double of vLLM's completions server")
    parser.add_argument("--model", required=True)
    parser.add_argument("--served-model-name")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-logprobs", type=int, default=VLLM_DEFAULT_MAX_LOGPROBS)
    parser.add_argument("--no-logprobs", action="store_true")
    parser.add_argument("--no-prompt-logprobs", action="store_true")
    parser.add_argument("--no-echo", action="store_true")
    parser.add_argument("--die-after", type=int)
    parser.add_argument("--request-log")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    handler = type(
        "Handler",
        (_Handler,),
        {
            "model": Model(args.model),
            "switches": Switches(
                args.served_model_name or args.model,
                args.max_logprobs,
                not args.no_logprobs,
                not args.no_prompt_logprobs,
                not args.no_echo,
                args.die_after,
                args.request_log,
            ),
        },
    )
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    server.daemon_threads = True
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


class Running(NamedTuple):
    """A running double: its completions URL and its process."""

    url: str
    process: subprocess.Popen

    @property
    def root(self) -> str:
        return self.url.removesuffix("/v1/completions")


@contextmanager
def serve(model: str | Path, *flags: str, startup_s: float = 120.0) -> Iterator[Running]:
    """Start the double in its own process; stop it (if still alive) when the block ends."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--model", str(model), *flags],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        line = _first_line(process, startup_s)
        if not line.startswith("READY "):
            raise RuntimeError(f"the vLLM double did not start: {line!r}")
        yield Running(f"http://127.0.0.1:{int(line.split()[1])}/v1/completions", process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def _first_line(process: subprocess.Popen, timeout: float) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0].strip() if result else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    main()
