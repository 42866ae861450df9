"""The one redaction helper: URL credentials, long secrets anywhere, short secrets as values; and
everything that prints or writes model arguments going through it."""

from __future__ import annotations

import logging
import sys

import pytest
from _servers import serve_completions

from lm_failtrace.errors import InputError
from lm_failtrace.record import secrets
from lm_failtrace.record.backends.completions import FailtraceLocalCompletions
from lm_failtrace.record.backends.generation import GenerationSettings

LONG = "sk-long-secret-0123"
SHORT = "ab1"


@pytest.fixture
def stashed() -> None:
    with secrets.stash_scope():
        secrets.stash({"api_key": LONG, "token": SHORT})
        yield


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("api_key", True), ("apikey", True), ("api-key", True), ("apiKey", True),
        ("openai_key", True), ("token", True), ("hf_token", True), ("access-token", True),
        ("client_secret", True), ("password", True), ("db_passwd", True), ("auth", True),
        ("credentials", True), ("tokenizer", False), ("add_bos_token", False),
        ("max_gen_toks", False), ("base_url", False), ("pretrained", False),
    ],
)  # fmt: skip
def test_secret_names(name: str, secret: bool) -> None:
    assert secrets.is_secret_name(name) is secret


def test_url_credentials_are_redacted_anywhere() -> None:
    text = "base_url=http://user:PW@host:8/v1/completions,model=m 'https://tok@h.io/x' a@b.c"
    assert secrets.redact_text(text, []) == (
        "base_url=http://<redacted>@host:8/v1/completions,model=m 'https://<redacted>@h.io/x' a@b.c"
    )
    assert (
        secrets.redact_text("see http://host/path?mail=a@b", []) == "see http://host/path?mail=a@b"
    )


def test_long_secrets_anywhere_short_ones_only_as_values(stashed) -> None:
    text = f"key {LONG} here; token={SHORT},x=1 {{'token': '{SHORT}'}} \"t\": \"{SHORT}\" {SHORT}cd"
    assert secrets.redact_text(text) == (
        "key <redacted> here; token=<redacted>,x=1 {'token': '<redacted>'} "
        f'"t": "<redacted>" {SHORT}cd'
    )
    assert secrets.redact_text(f"n={SHORT}9") == f"n={SHORT}9"  # a longer value is not the secret


def test_redact_settings_by_name_value_and_url(stashed) -> None:
    config = {
        "model_args": f"pretrained=m,hf_token=xyz,base_url=http://u:p@h/v1,seed={SHORT}",
        "metadata": {"apikey": "whatever", "other": SHORT, "list": ["http://u:p@h", 3]},
    }
    assert secrets.redact(config) == {
        "model_args": "pretrained=m,hf_token=<redacted>,base_url=http://<redacted>@h/v1,"
        "seed=<redacted>",
        "metadata": {
            "apikey": "<redacted>",
            "other": "<redacted>",
            "list": ["http://<redacted>@h", 3],
        },
    }


def test_url_credentials_split_off_model_arguments() -> None:
    public, private = secrets.url_credentials({"base_url": "http://u%40x:p%3Aw@h/v1", "n": 2})
    assert public == {"base_url": "http://h/v1", "n": 2}
    assert private == {"base_url": "http://u%40x:p%3Aw@h/v1"}
    assert secrets.basic_auth(secrets.strip_userinfo(private["base_url"])[1]) == ("u@x", "p:w")


def test_printed_and_logged_text_is_redacted(stashed, capsys) -> None:
    logger = logging.getLogger("lm_failtrace_test_secrets")
    handler = logging.StreamHandler(sys.stderr)  # bound to the stream of its creation
    logger.addHandler(handler)
    try:
        with secrets.redacted_output():
            print(f"args: {{'api_key': '{LONG}', 'base_url': 'http://u:pw@h/v1'}}")
            logger.warning("token=%s and %s", SHORT, "http://u:pw@h")
        logger.warning("after: token=%s", SHORT)  # the block ended: nothing is changed
    finally:
        logger.removeHandler(handler)
    out, err = capsys.readouterr()
    assert out == "args: {'api_key': '<redacted>', 'base_url': 'http://<redacted>@h/v1'}\n"
    assert "token=<redacted> and http://<redacted>@h" in err
    assert f"after: token={SHORT}" in err
    assert LONG not in out + err and "pw" not in out + err


def test_errors_are_redacted(stashed) -> None:
    error = InputError(f"server http://u:pw@h refused key {LONG}", path="x", line=3)
    redacted = secrets.redact_error(error)
    assert str(redacted) == "x, line 3: server http://<redacted>@h refused key <redacted>"


def test_files_are_scrubbed_atomically(tmp_path, stashed) -> None:
    leaky = tmp_path / "results.json"
    leaky.write_text(
        f'{{"model_args": "base_url=http://u:pw@h/v1,token={SHORT}", "token": "{SHORT}"}}\n',
        encoding="utf-8",
    )
    clean = tmp_path / "samples.jsonl"
    clean.write_text('{"answer": "ab12"}\n', encoding="utf-8")
    assert secrets.redact_files([leaky, clean], secrets.secret_values()) == [leaky]
    assert leaky.read_text(encoding="utf-8") == (
        '{"model_args": "base_url=http://<redacted>@h/v1,token=<redacted>", '
        '"token": "<redacted>"}\n'
    )
    assert clean.read_text(encoding="utf-8") == '{"answer": "ab12"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json", "samples.jsonl"]


def test_completions_backend_sends_url_credentials_as_basic_auth() -> None:
    """They reach the server, never a message: errors name the bare URL."""
    with serve_completions(lambda prompt, seed, max_tokens: ("#### 3", "stop", 2)) as served:
        url = served.url.replace("http://", "http://us%40er:p%3Aw@")
        backend = FailtraceLocalCompletions(base_url=url, max_retries=0)
        settings = GenerationSettings.from_gen_kwargs({"until": ["\n"]}, 16)
        assert backend.server.complete("1+2=", settings, seed=1).text == "#### 3"
        assert served.received[0]["authorization"] == "Basic dXNAZXI6cDp3"  # us@er:p:w
        assert backend.base_url == served.url
    with pytest.raises(InputError) as caught:
        backend.server.complete("1+2=", settings, seed=1)  # the server is gone
    assert served.url in str(caught.value) and "p%3Aw" not in str(caught.value)


def test_completions_backend_takes_the_url_failtrace_eval_stashed() -> None:
    with secrets.stash_scope():
        secrets.stash({"base_url": "http://user:pw@h:1/v1/completions"})
        backend = FailtraceLocalCompletions(base_url="http://h:1/v1/completions")
        other = FailtraceLocalCompletions(base_url="http://elsewhere/v1/completions")
    assert backend.server.replicas == [("http://h:1/v1/completions", ("user", "pw"))]
    assert backend.base_url == "http://h:1/v1/completions"
    assert other.server.replicas == [("http://elsewhere/v1/completions", None)]


def test_replica_urls_each_keep_their_credentials() -> None:
    """``base_url=URL1|URL2``: failtrace eval stashes both URLs' credentials, lm-eval sees none."""
    urls = "http://a:pw1@h1:1/v1/completions|http://b:pw2@h2:2/v1/completions"
    public, private = secrets.url_credentials({"base_url": urls})
    assert public["base_url"] == "http://h1:1/v1/completions|http://h2:2/v1/completions"
    with secrets.stash_scope():
        secrets.stash(private)
        backend = FailtraceLocalCompletions(base_url=public["base_url"])
    assert backend.server.replicas == [
        ("http://h1:1/v1/completions", ("a", "pw1")),
        ("http://h2:2/v1/completions", ("b", "pw2")),
    ]
