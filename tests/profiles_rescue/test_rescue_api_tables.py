"""Generic rollout tables of two API models at two reasoning-effort settings: ``--rescue`` and
``analyze`` end to end, the effort operator's rescue and tokens per cell checked independently.

The tables are what a team exports from its own harness (columns model, task, problem_id,
answer, correct, generated_tokens, finish_reason): per model, 30 problems x 8 repeats at low
effort in one file and at high effort in another. The expected numbers are computed here from
those rows with plain Python, without the profile builder.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from lm_failtrace.cli import main

MODELS = ("openai/gpt-5-mini", "anthropic/claude-sonnet-4-5")
TASK = "gpqa_diamond"
PROBLEMS = 30
REPEATS = 8
MAX_TOKENS = {"low": 2048, "high": 16384}


def rollouts(model: str, effort: str, seed: int) -> list[dict]:
    """One model's rows at one effort: harder problems fail more, low effort runs out of tokens
    on long ones, high effort thinks longer and fixes some of them."""
    rng = random.Random(f"{model}|{seed}")
    rows = []
    for p in range(PROBLEMS):
        difficulty = rng.random()
        long_problem = rng.random() < 0.3
        p_correct = max(0.0, 1.0 - difficulty * (1.3 if effort == "low" else 0.8))
        if effort == "low" and long_problem:
            p_correct *= 0.3
        draw = random.Random(f"{model}|{effort}|{p}")
        for _ in range(REPEATS):
            correct = draw.random() < p_correct
            truncated = effort == "low" and long_problem and not correct and draw.random() < 0.7
            tokens = (
                MAX_TOKENS[effort]
                if truncated
                else int((400 if effort == "low" else 1800) * (0.5 + difficulty + draw.random()))
            )
            answer = None if truncated else ("B" if correct else draw.choice("ACD"))
            rows.append({
                "model": f"{model}@reasoning_effort={effort}", "task": TASK,
                "problem_id": f"rec{p:03d}", "answer": answer, "correct": correct,
                "generated_tokens": tokens, "finish_reason": "length" if truncated else "stop",
            })  # fmt: skip
    return rows


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def per_problem(rows: list[dict]) -> dict[tuple[str, str], tuple[int, int, float]]:
    """(model stem, problem) -> (rollouts, correct, mean tokens per rollout)."""
    acc: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        key = (row["model"].split("@")[0], row["problem_id"])
        n, k, tokens = acc.setdefault(key, [0, 0, 0])
        acc[key] = [n + 1, k + row["correct"], tokens + row["generated_tokens"]]
    return {key: (n, k, tokens / n) for key, (n, k, tokens) in acc.items()}


def test_effort_operator_rescue_and_tokens_per_cell(tmp_path: Path) -> None:
    low = [row for m in MODELS for row in rollouts(m, "low", 1)]
    high = [row for m in MODELS for row in rollouts(m, "high", 2)]
    write(tmp_path / "low.jsonl", low)
    write(tmp_path / "high.jsonl", high)
    table = tmp_path / "t.parquet"
    args = ["profile", str(tmp_path / "low.jsonl"), "--rescue",
            f"effort_high={tmp_path / 'high.jsonl'}", "-o", str(table)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    analysed = CliRunner().invoke(main, ["analyze", str(table), "--json", "--repeats", "3"])
    assert analysed.exit_code == 0, analysed.output
    document = json.loads(analysed.stdout)

    base, other = per_problem(low), per_problem(high)
    for model in MODELS:
        failures = [key for key, (n, k, _) in base.items() if key[0] == model and k < n]
        assert len(failures) >= 10  # enough failure units for intervals
        section = document["cells"][f"{model}@reasoning_effort=low|{TASK}"]
        assert section["n_units"] == len(failures)
        effort = section["operators"]["effort_high"]
        expected_rescue = sum(other[key][1] / other[key][0] for key in failures) / len(failures)
        expected_tokens = sum(other[key][2] for key in failures) / len(failures)
        assert effort["rescue"]["mean"] == pytest.approx(expected_rescue, rel=1e-12)
        assert effort["rescue"]["ci_low"] < expected_rescue < effort["rescue"]["ci_high"]
        assert effort["tokens_per_trial"] == pytest.approx(expected_tokens, rel=1e-12)
        retry = section["operators"]["retry"]  # estimated: k / (n - 1) of BASE's own rollouts
        expected_retry = sum(base[key][1] / (base[key][0] - 1) for key in failures) / len(failures)
        assert retry["rescue"]["mean"] == pytest.approx(expected_retry, rel=1e-12)
        assert retry["tokens_per_trial"] == pytest.approx(
            sum(base[key][2] for key in failures) / len(failures), rel=1e-12
        )
        # Regimes, the honest comparison at a token budget and selection are all defined.
        assert sum(section["regimes"]["counts"].values()) == len(failures)
        assert section["budget"]["applied"] is True
        assert "effort_high" in document["config"]["operators"]
        assert section["selection"]["selected"] in section["honest"]["all_failures"]
    text = CliRunner().invoke(main, ["analyze", str(table), "--repeats", "3"]).stdout
    assert "effort_high" in text.split("Published protocol")[0]  # the operators table
