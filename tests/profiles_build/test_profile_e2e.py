"""End to end: a real ``failtrace eval`` run (lm-eval's own CLI) profiled, features exact.

The model is the tests' OpenAI-style completions server (tests/_servers.py) on 127.0.0.1, whose
reply is a fixed function of the per-repeat seed (documented in
lm_failtrace.record.backends.seeds), so every rollout's answer, finish reason and token count,
and therefore every unit's features, is known here without reading anything ``failtrace`` wrote.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from _servers import Reply, serve_completions
from click.testing import CliRunner

from lm_failtrace.cli import main
from lm_failtrace.profiles.build import build_profiles
from lm_failtrace.record.backends.seeds import rollout_seed
from lm_failtrace.rollouts import NO_ANSWER

TASK = "failtrace_arith"
LIMIT = 4
REPEATS = 16  # failtrace_arith's repeats
BASE_SEED = 7
MAX_TOKENS = 128  # failtrace_arith's max_gen_toks
ARITH = Path(__file__).resolve().parents[2] / "tasks" / TASK / "arith.jsonl"
WRONG = "7777"


def reply(seed: int, target: str) -> tuple[str | None, str, int]:
    """(answer, finish reason, tokens) the server gives for one seed; None = no answer."""
    kind = seed % 5
    if kind == 0:
        return None, "length", MAX_TOKENS  # rambles into the token limit
    if kind == 1:
        return WRONG, "stop", 4  # one convergent wrong answer
    if kind == 2:
        return str(int(target) + 1), "stop", 5  # an off-by-one wrong answer
    return target, "stop", 6


def completion(answers: dict[str, str]) -> Reply:
    """The server's reply to a prompt: the rule of :func:`reply` for the question's answer."""

    def respond(prompt: str, seed: int, max_tokens: int) -> tuple[str, str, int]:
        question = prompt.rsplit("Question: ", 1)[1].split("\nAnswer:")[0]
        answer, finish, tokens = reply(seed, answers[question])
        text = " 1 + 1 = 2. 2 + 2 = 4. 4 +" if answer is None else f" #### {answer}"
        return text, finish, tokens

    return respond


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One real ``failtrace eval`` run of failtrace_arith (LIMIT docs x 16 repeats)."""
    rows = [json.loads(line) for line in ARITH.read_text(encoding="utf-8").splitlines()]
    answers = {r["question"]: r["answer"] for r in rows}
    out = tmp_path_factory.mktemp("e2e") / "runs"
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    tasks_path = subprocess.run(
        [sys.executable, "-c", "from lm_failtrace.cli import main; main()", "tasks-path"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    with serve_completions(completion(answers)) as served:
        proc = subprocess.run(
            [sys.executable, "-c", "from lm_failtrace.cli import main; main()", "eval",
             "--model", "failtrace-local-completions",
             "--model_args", f"base_url={served.url},model=served-model,num_concurrent=2",
             "--tasks", TASK, "--include_path", tasks_path, "--limit", str(LIMIT),
             "--seed", str(BASE_SEED), "--log_samples", "--output_path", str(out)],
            capture_output=True, text=True, timeout=300, env=env, cwd=out.parent,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    yield out


def expected_rows(run_dir: Path) -> dict[str, dict[str, float]]:
    """Per problem id, the features implied by the server's rule (doc ids from lm-eval's log)."""
    (samples,) = run_dir.rglob(f"samples_{TASK}_*.jsonl")
    out = {}
    for line in samples.read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        outcomes = [
            reply(rollout_seed(BASE_SEED, TASK, doc["doc_id"], r), doc["doc"]["answer"])
            for r in range(REPEATS)
        ]
        failed = [o for o in outcomes if o[0] != doc["doc"]["answer"]]
        if not failed:
            continue
        k = len(failed)
        counts = Counter(NO_ANSWER if a is None else a for a, _, _ in failed)
        h = -sum(c / k * math.log(c / k) for c in counts.values())
        out[doc["doc"]["problem_id"]] = {
            "n_rollouts": REPEATS,
            "n_failed_rollouts": k,
            "pass_rate": (REPEATS - k) / REPEATS,
            "answer_entropy": h / math.log(k) if k > 1 else 0.0,
            "mode_share": max(counts.values()) / k,
            "truncation_rate": sum(f == "length" for _, f, _ in failed) / k,
            "no_answer_rate": counts[NO_ANSWER] / k,
            "mean_generated_tokens": sum(t for _, _, t in failed) / k,
            "max_generated_tokens": max(t for _, _, t in failed),
        }
    return out


@pytest.mark.slow
def test_profile_of_a_real_eval_run_is_exact(run_dir: Path, tmp_path: Path) -> None:
    expected = expected_rows(run_dir)
    assert len(expected) >= 2  # the seeds give this run several failure units
    output = tmp_path / "profile.parquet"
    result = CliRunner().invoke(main, ["profile", str(run_dir), "-o", str(output), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [p.rsplit("/", 1)[1].split("_")[0] for p in summary["input"]] == ["rollouts"]
    assert summary["rollouts"] == LIMIT * REPEATS and summary["problems"] == LIMIT
    frame = pd.read_parquet(output)
    assert set(frame["cell"]) == {f"served-model|{TASK}"}
    assert sorted(frame["problem_id"]) == sorted(expected)
    for _, row in frame.iterrows():
        for col, value in expected[row["problem_id"]].items():
            assert row[col] == pytest.approx(value, rel=1e-12, abs=1e-15), (row["problem_id"], col)


@pytest.mark.slow
def test_samples_log_alone_gives_the_same_profile(run_dir: Path, tmp_path: Path) -> None:
    """Without the side-car, the samples log's failtrace_rollouts give the identical table."""
    with_sidecar = build_profiles(run_dir).frame
    copy = tmp_path / "runs"
    for path in run_dir.rglob("*"):
        if path.is_file() and not path.name.startswith("rollouts_"):
            target = copy / path.relative_to(run_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    built = build_profiles(copy)
    assert [p.name.split("_")[0] for p in built.sources] == ["samples"]
    pd.testing.assert_frame_equal(built.frame, with_sidecar)
