"""A fake OpenAI-compatible completions server, for tests that drive ``failtrace eval`` over HTTP.

One server for every such test: it answers ``POST /v1/completions`` on 127.0.0.1 (a single prompt
or lm-eval's stock list of prompts), records every request it receives, and leaves what to answer
to the test: ``reply(prompt, seed, max_tokens) -> (text, finish_reason, completion_tokens)``.
A reply that is a fixed function of the per-repeat seed makes every rollout known to the test
without reading anything ``failtrace`` wrote.

Imported by module name (``from _servers import ...``): pytest puts ``tests/`` on ``sys.path``
for the top-level conftest.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

#: (prompt, seed, max_tokens) -> (text, finish_reason, completion_tokens)
Reply = Callable[[str, int, int], tuple[str, str, int]]
PROMPT_TOKENS = 10  # usage.prompt_tokens of every reply (nothing reads it)


class Served(NamedTuple):
    """A running server: the completions URL, and the request bodies received so far.

    Each body has the request's ``Authorization`` header added under ``"authorization"``.
    """

    url: str
    received: list[dict[str, Any]]


class _Handler(BaseHTTPRequestHandler):
    reply: Reply  # set on a subclass per server, with ``received``
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body["authorization"] = self.headers.get("Authorization")
        self.received.append(body)
        if self.path != "/v1/completions":
            self.send_error(404)
            return
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        choices, used = [], 0
        for index, prompt in enumerate(prompts):
            text, finish, tokens = self.reply(prompt, body["seed"], body["max_tokens"])
            choices.append(
                {"index": index, "text": text, "finish_reason": finish, "logprobs": None}
            )
            used += tokens
        usage = {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": used,
            "total_tokens": PROMPT_TOKENS + used,
        }
        data = json.dumps({
            "id": "cmpl-test", "object": "text_completion", "model": body.get("model"),
            "choices": choices, "usage": usage,
        }).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serve_completions(reply: Reply) -> Iterator[Served]:
    """Serve ``reply`` on a free port of 127.0.0.1 until the block ends."""
    received: list[dict[str, Any]] = []
    handler = type("Handler", (_Handler,), {"reply": staticmethod(reply), "received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_address[1]}/v1/completions", received)
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    """A free port on 127.0.0.1 (to start a server on, or to find nothing listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
