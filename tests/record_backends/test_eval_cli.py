"""``failtrace eval``: the real lm-eval CLI in a subprocess, with our backends and side-cars (and
its library form, :func:`lm_failtrace.record.run_eval`, in-process)."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _servers import Served, free_port, serve_completions

from lm_failtrace.record.backends.seeds import rollout_seed

REPEATS = 16  # failtrace_arith's repeats
LIMIT = 2
TASK = "failtrace_arith"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _one(folder: Path, pattern: str) -> Path:
    (found,) = folder.rglob(pattern)
    return found


def _assert_complete(rows: list[dict[str, Any]], base_seed: int) -> None:
    """Every doc has all repeats, each scored, with the documented per-repeat seed."""
    assert len(rows) == LIMIT * REPEATS
    by_doc: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_doc[row["doc_id"]].append(row)
    assert sorted(by_doc) == list(range(LIMIT))
    for doc_id, doc_rows in by_doc.items():
        assert sorted(r["repeat"] for r in doc_rows) == list(range(REPEATS))
        assert len({r["problem_id"] for r in doc_rows}) == 1
        assert all(isinstance(r["correct"], bool) for r in doc_rows)
        for r in doc_rows:
            assert r["task"] == TASK
            assert r["seed"] == rollout_seed(base_seed, TASK, doc_id, r["repeat"])
        assert len({r["seed"] for r in doc_rows}) == REPEATS


def _hf_run(run_failtrace, tiny_lm: Path, tasks_path: str, out: Path) -> list[dict[str, Any]]:
    proc = run_failtrace(
        ["eval", "--model", "failtrace-hf", "--model_args", f"pretrained={tiny_lm},dtype=float32",
         "--tasks", TASK, "--include_path", tasks_path, "--limit", str(LIMIT),
         "--gen_kwargs", "max_gen_toks=12", "--seed", "11", "--batch_size", "8",
         "--log_samples", "--output_path", str(out)],
        cwd=out.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _read_jsonl(_one(out, f"rollouts_{TASK}_*.jsonl"))


@pytest.mark.slow
def test_hf_run_records_every_repeat_reproducibly(
    run_failtrace, tiny_lm: Path, tasks_path: str, tmp_path
) -> None:
    first = _hf_run(run_failtrace, tiny_lm, tasks_path, tmp_path / "run1")
    _assert_complete(first, base_seed=11)
    for row in first:
        assert row["model"] == tiny_lm.name  # the checkpoint folder's name, not its path
        assert isinstance(row["generated_tokens"], int) and 1 <= row["generated_tokens"] <= 12
        assert row["finish_reason"] in ("stop", "length")
        if row["finish_reason"] == "length":
            assert row["generated_tokens"] == 12
    reasons = Counter(r["finish_reason"] for r in first)
    assert reasons["length"] > 0  # 12 tokens cut the random model's rambling

    results = json.loads(_one(tmp_path / "run1", "results_*.json").read_text(encoding="utf-8"))
    metrics = results["results"][TASK]
    assert metrics["truncation_rate,failtrace"] > 0
    assert metrics["failtrace_rollouts,failtrace"] == LIMIT * REPEATS
    samples = _read_jsonl(_one(tmp_path / "run1", f"samples_{TASK}_*.jsonl"))
    assert [len(s["resps"][0]) for s in samples] == [REPEATS] * LIMIT  # every repeat kept

    second = _hf_run(run_failtrace, tiny_lm, tasks_path, tmp_path / "run2")
    assert second == first  # same seeds -> same rollouts, answers, counts and finish reasons


@pytest.mark.slow
def test_run_eval_returns_the_sidecars_it_wrote(tmp_path) -> None:
    """The library call, in-process on the bundled specialist: what it returns is the run."""
    import torch

    from lm_failtrace.models import tiny_model_path
    from lm_failtrace.record import run_eval
    from lm_failtrace.record.tasks import tasks_dir

    torch.set_num_threads(1)
    out = tmp_path / "runs"
    result = run_eval(
        ["--model", "failtrace-hf", "--model_args", f"pretrained={tiny_model_path('specialist')}",
         "--tasks", TASK, "--include_path", str(tasks_dir()), "--limit", str(LIMIT),
         "--gen_kwargs", "max_gen_toks=16", "--seed", "7", "--log_samples",
         "--output_path", str(out)]
    )  # fmt: skip
    assert result.output_path == out
    assert result.sidecars == (_one(out, f"rollouts_{TASK}_*.jsonl"),)
    _assert_complete(_read_jsonl(result.sidecars[0]), base_seed=7)


def _arith_answer(prompt: str) -> int:
    """Solve a failtrace_arith prompt the way the data generator defines it."""
    value = int(re.search(r"Start with (-?\d+)\.", prompt).group(1))
    for word, operand in re.findall(r"(Add|Subtract|Multiply by) (-?\d+)\.", prompt):
        value = {"Add": value + int(operand), "Subtract": value - int(operand)}.get(
            word, value * int(operand)
        )
    return value


def _reply(answer: int, seed: int, max_tokens: int) -> tuple[str, str, int]:
    """(text, finish_reason, completion_tokens) as a function of the seed: a quarter of the
    rollouts run out of tokens, a quarter answer wrong, half answer right."""
    if seed % 4 == 0:
        return " 1 + 1 = 2. 2 + ", "length", max_tokens
    shown = answer if seed % 4 != 1 else answer + 1
    return f" #### {shown}", "stop", 3 + seed % 7


def _completion(prompt: str, seed: int, max_tokens: int) -> tuple[str, str, int]:
    return _reply(_arith_answer(prompt), seed, max_tokens)


@pytest.fixture
def completions_server() -> Iterator[Served]:
    """OpenAI-style /v1/completions: the reply depends on the seed, so rollouts differ."""
    with serve_completions(_completion) as served:
        yield served


CANARY = "sk-canary-7f3a9c1e5b"


@pytest.mark.slow
def test_local_completions_seeds_metadata_and_no_leaked_key(
    run_failtrace, completions_server, tasks_path: str, tmp_path
) -> None:
    url, received = completions_server
    out = tmp_path / "runs"
    proc = run_failtrace(
        ["eval", "--model", "failtrace-local-completions",
         "--model_args", f"base_url={url},model=served-model,api_key={CANARY},num_concurrent=4",
         "--tasks", TASK, "--include_path", tasks_path, "--limit", str(LIMIT), "--seed", "5",
         "--log_samples", "--output_path", str(out)],
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]

    assert len(received) == LIMIT * REPEATS
    assert {r["authorization"] for r in received} == {f"Bearer {CANARY}"}
    assert {r["model"] for r in received} == {"served-model"}
    assert {(r["max_tokens"], tuple(r["stop"]), r["temperature"]) for r in received} == {
        (128, ("\n",), 0.6)
    }
    expected_seeds = {rollout_seed(5, TASK, d, r) for d in range(LIMIT) for r in range(REPEATS)}
    assert {r["seed"] for r in received} == expected_seeds

    rows = _read_jsonl(_one(out, f"rollouts_{TASK}_*.jsonl"))
    _assert_complete(rows, base_seed=5)
    by_seed = {r["seed"]: r for r in received}
    for row in rows:
        seed, answer = row["seed"], _arith_answer(by_seed[row["seed"]]["prompt"])
        if seed % 4 == 0:
            assert (row["answer"], row["correct"], row["finish_reason"]) == (None, False, "length")
            assert row["generated_tokens"] == 128
        else:
            shown = answer if seed % 4 != 1 else answer + 1
            assert row["answer"] == str(shown) and row["correct"] is (seed % 4 != 1)
            assert (row["finish_reason"], row["generated_tokens"]) == ("stop", 3 + seed % 7)

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) == 3  # results, samples, side-car
    for path in written:
        assert CANARY not in path.read_text(encoding="utf-8", errors="replace"), path
    assert CANARY not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_stock_backend_works_and_its_secret_is_scrubbed(
    run_failtrace, tasks_path: str, tmp_path
) -> None:
    """A stock lm-eval backend (``dummy``, the one the core install can run; ``hf``,
    ``local-completions`` need extras): still found after ours are registered, its rollouts'
    metadata unknown (null); the token it is given passes through to it and is scrubbed from the
    results JSON lm-eval writes it into."""
    out = tmp_path / "runs"
    proc = run_failtrace(
        ["eval", "--model", "dummy", "--model_args", f"token={CANARY}",
         "--tasks", TASK, "--include_path", tasks_path, "--limit", "1",
         "--log_samples", "--output_path", str(out)],
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "receives token as model arguments" in proc.stderr
    rows = _read_jsonl(_one(out, f"rollouts_{TASK}_*.jsonl"))
    assert sorted(r["repeat"] for r in rows) == list(range(REPEATS))  # by position
    assert {(r["answer"], r["correct"]) for r in rows} == {(None, False)}  # it answers "lol"
    assert {(r["seed"], r["generated_tokens"], r["finish_reason"]) for r in rows} == {
        (None, None, None)
    }
    results = _one(out, "results_*.json").read_text(encoding="utf-8")
    assert '"token": "<redacted>"' in results
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):
        assert CANARY not in path.read_text(encoding="utf-8", errors="replace"), path


#: A password inside a URL, and a secret too short to scrub as plain text.
URL_PASSWORD = "Pw-in-url-4d2e"
SHORT_SECRET = "k9z"


@pytest.mark.slow
def test_url_credentials_reach_the_server_and_nothing_else(
    run_failtrace, completions_server, tasks_path: str, tmp_path
) -> None:
    url, received = completions_server
    with_password = url.replace("http://", f"http://user:{URL_PASSWORD}@")
    out = tmp_path / "runs"
    proc = run_failtrace(
        ["eval", "--model", "failtrace-local-completions",
         "--model_args", f"base_url={with_password},model=m,api_key={SHORT_SECRET}",
         "--tasks", TASK, "--include_path", tasks_path, "--limit", "1",
         "--log_samples", "--output_path", str(out)],
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the URL's credentials, as HTTP basic auth (they win over api_key, as in requests)
    assert {r["authorization"] for r in received} == {"Basic dXNlcjpQdy1pbi11cmwtNGQyZQ=="}
    results = _one(out, "results_*.json").read_text(encoding="utf-8")
    assert f'"base_url": "{url}"' in results  # the bare URL: the run is still described
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8", errors="replace")
        assert URL_PASSWORD not in text and f"={SHORT_SECRET}" not in text, path
        assert f"'{SHORT_SECRET}'" not in text and f'"{SHORT_SECRET}"' not in text, path
    assert URL_PASSWORD not in proc.stdout + proc.stderr
    assert SHORT_SECRET not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_a_stock_backend_s_url_credentials_and_short_secrets_are_scrubbed(
    run_failtrace, tasks_path: str, tmp_path
) -> None:
    """lm-eval's ``dummy`` gets its arguments as given; what lm-eval prints and writes is not."""
    out = tmp_path / "runs"
    proc = run_failtrace(
        ["eval", "--model", "dummy",
         "--model_args", f"token={SHORT_SECRET},base_url=http://user:{URL_PASSWORD}@h/v1",
         "--tasks", TASK, "--include_path", tasks_path, "--limit", "1",
         "--log_samples", "--output_path", str(out)],
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "http://<redacted>@h/v1" in proc.stdout  # lm-eval printed its configuration...
    assert URL_PASSWORD not in proc.stdout + proc.stderr  # ...without the credentials
    assert f"'{SHORT_SECRET}'" not in proc.stdout + proc.stderr
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8", errors="replace")
        assert URL_PASSWORD not in text and f"={SHORT_SECRET}" not in text, path
        assert f'"{SHORT_SECRET}"' not in text, path


@pytest.mark.slow
def test_unreachable_server_is_one_clear_error(run_failtrace, tasks_path: str, tmp_path) -> None:
    """Also runs from a --config YAML whose model arguments hold a key (lm-eval prints configs)."""
    url = f"http://127.0.0.1:{free_port()}/v1/completions"
    config = tmp_path / "eval.yaml"
    config.write_text(
        json.dumps({"model": "failtrace-local-completions",
                    "model_args": {"base_url": url, "max_retries": 1, "retry_backoff": 0.05,
                                   "api_key": CANARY}}),
        encoding="utf-8",
    )  # fmt: skip
    proc = run_failtrace(
        ["eval", "--config", str(config), "--tasks", TASK, "--include_path", tasks_path,
         "--limit", "1", "--log_samples", "--output_path", str(tmp_path / "runs")],
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "Traceback" not in proc.stderr
    assert f"cannot reach the completions server at {url}" in last
    assert "'base_url'" in last
    assert not list(tmp_path.rglob("rollouts_*"))
    assert "failtrace-local-completions" in proc.stdout  # lm-eval printed the config...
    assert CANARY not in proc.stdout + proc.stderr  # ...without the key


@pytest.mark.slow
def test_help_passes_through(run_failtrace, tmp_path) -> None:
    proc = run_failtrace(["eval", "--help"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "failtrace eval: lm-eval's CLI with the failtrace backends" in proc.stdout
    assert "--model_args" in proc.stdout and "--gen_kwargs" in proc.stdout
