"""Seeds, repeat numbering, gen_kwargs parsing, stop handling, secrets and side-car writing."""

from __future__ import annotations

import hashlib
import json
import pickle
from types import SimpleNamespace

import pytest

from lm_failtrace.errors import InputError
from lm_failtrace.record import secrets
from lm_failtrace.record.backends.generation import GenerationSettings, truncate_at_stop
from lm_failtrace.record.backends.seeds import assign_repeats, rollout_seed
from lm_failtrace.record.rollout_text import RolloutText, rollout_meta
from lm_failtrace.record.sidecar import write_sidecar
from lm_failtrace.rollouts import sidecar_path


def test_rollout_seed_is_the_documented_hash() -> None:
    digest = hashlib.sha256(b"7|failtrace_arith|3|2").digest()
    assert rollout_seed(7, "failtrace_arith", 3, 2) == int.from_bytes(digest[:4], "big") & (
        2**31 - 1
    )
    seeds = {rollout_seed(7, "failtrace_arith", 3, r) for r in range(100)}
    assert len(seeds) == 100  # distinct across repeats
    assert rollout_seed(8, "failtrace_arith", 3, 2) != rollout_seed(7, "failtrace_arith", 3, 2)


def test_repeats_are_numbered_per_doc_in_order_of_appearance() -> None:
    a0, a1, b0 = (SimpleNamespace(task_name=t, doc_id=d) for t, d in [("a", 0), ("a", 1), ("b", 0)])
    slots = assign_repeats([a0, a0, a1, b0, a0, a1, b0], base_seed=1)
    assert [(s.task, s.doc_id, s.repeat) for s in slots] == [
        ("a", 0, 0), ("a", 0, 1), ("a", 1, 0), ("b", 0, 0), ("a", 0, 2), ("a", 1, 1), ("b", 0, 1),
    ]  # fmt: skip
    assert slots[4].seed == rollout_seed(1, "a", 0, 2)


def test_gen_kwargs_parsing() -> None:
    s = GenerationSettings.from_gen_kwargs(
        {"until": "\n", "do_sample": True, "temperature": 0.6, "repetition_penalty": 1.1}, 256
    )
    assert (s.until, s.max_gen_toks, s.temperature, s.greedy) == (("\n",), 256, 0.6, False)
    assert s.extra == {"repetition_penalty": 1.1}
    greedy = GenerationSettings.from_gen_kwargs({"do_sample": False, "temperature": 0.6}, 5)
    assert greedy.greedy and greedy.temperature == 0.0
    with pytest.raises(InputError, match="max_gen_toks"):
        GenerationSettings.from_gen_kwargs({"max_gen_toks": 0}, 5)


def test_truncate_at_earliest_stop_string() -> None:
    assert truncate_at_stop("a b\n\nc Question:", ("Question:", "\n\n")) == ("a b", True)
    assert truncate_at_stop("no stop", ("\n",)) == ("no stop", False)


def test_rollout_text_keeps_meta_through_pickle() -> None:
    text = RolloutText("42", {"seed": 5, "finish_reason": "stop"})
    again = pickle.loads(pickle.dumps(text))
    assert again == "42" and rollout_meta(again) == {"seed": 5, "finish_reason": "stop"}
    assert rollout_meta("plain str") == {}


def test_secret_names_and_redaction(tmp_path) -> None:
    public, secret = secrets.split_secrets(
        {"base_url": "http://x", "api_key": "k" * 12, "hf_token": "t" * 12, "max_gen_toks": 5,
         "client_secret": "s" * 12, "tokenizer": "gpt2"}
    )  # fmt: skip
    assert set(public) == {"base_url", "max_gen_toks", "tokenizer"}
    assert set(secret) == {"api_key", "hf_token", "client_secret"}
    leaky = tmp_path / "results.json"
    leaky.write_text('{"api_key": "sk-canary-0123456789"}\n', encoding="utf-8")
    clean = tmp_path / "clean.json"
    clean.write_text("{}\n", encoding="utf-8")
    changed = secrets.redact_files([leaky, clean], ["sk-canary-0123456789"])
    assert changed == [leaky]
    assert leaky.read_text(encoding="utf-8") == '{"api_key": "<redacted>"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.json", "results.json"]


def _samples_line(doc_id: int, rollouts: list[dict]) -> str:
    return json.dumps({"doc_id": doc_id, "filter": "failtrace", "failtrace_rollouts": rollouts})


def test_sidecar_rows_and_failure_leaves_nothing(tmp_path) -> None:
    run = tmp_path / "model"
    run.mkdir()
    samples = run / "samples_failtrace_arith_2026-01-01T00-00-00.000001.jsonl"
    record = {"task": "failtrace_arith", "doc_id": 0, "problem_id": "p0", "repeat": 0,
              "seed": 9, "answer": "4", "correct": True, "generated_tokens": 3,
              "finish_reason": "stop", "spread": 0.5}  # fmt: skip
    samples.write_text(_samples_line(0, [record, {**record, "repeat": 1}]) + "\n", "utf-8")
    target, count = write_sidecar(samples)
    assert target == sidecar_path(samples) and target.name.startswith("rollouts_failtrace_arith_")
    rows = [json.loads(line) for line in target.read_text("utf-8").splitlines()]
    assert count == 2 and [r["repeat"] for r in rows] == [0, 1]
    assert rows[0] == {"model": "model", **record}

    target.unlink()
    samples.write_text(_samples_line(0, [record]) + "\n" + _samples_line(1, [record])[:30], "utf-8")
    with pytest.raises(InputError) as err:
        write_sidecar(samples)
    assert err.value.line == 2 and err.value.path == str(samples)
    assert sorted(p.name for p in run.iterdir()) == [samples.name]  # no half-written side-car


def test_no_sidecar_for_a_stock_task(tmp_path) -> None:
    samples = tmp_path / "samples_gsm8k_2026-01-01T00-00-00.jsonl"
    samples.write_text(json.dumps({"doc_id": 0, "resps": [["x"]]}) + "\n", "utf-8")
    assert write_sidecar(samples) is None
    assert not sidecar_path(samples).exists()
