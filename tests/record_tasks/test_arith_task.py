"""failtrace_arith through the real lm-eval: bundled data, all N repeats scored and recorded.

The model is a scripted test double (lm-eval cannot run without one); everything else (task
loading, filters, target rendering, exact_match, aggregation, lm-eval's own file writer) is
lm-eval's real code.
"""

from __future__ import annotations

import copy
import json
import math
from math import comb
from pathlib import Path

import pytest
from conftest import run_task, scripted_lm

from lm_failtrace.record import arith
from lm_failtrace.record.rollout_text import RolloutText
from lm_failtrace.record.tasks import arith_data_path, tasks_dir

N = 16
#: correct repeats per doc (docs 0..2 of the bundled file): all, 5, none.
CORRECT = {0: 16, 1: 5, 2: 0}


def _pass_at_k(n: int, c: int, k: int) -> float:
    """Chen et al.'s estimator written independently of the code under test."""
    return 1.0 - comb(n - c, k) / comb(n, k)


def _doc_index(doc: dict) -> int:
    return int(doc["problem_id"].rsplit("-", 1)[1])


def _script(doc: dict, r: int) -> str:
    """Repeat r of doc: correct for r < CORRECT[doc]; failures of three kinds by design."""
    i = _doc_index(doc)
    steps = doc["solution"].split("####")[0].strip()
    meta = {"seed": 1000 * i + r, "repeat": r, "generated_tokens": 20 + r}
    if r < CORRECT[i]:
        return RolloutText(f" {steps} #### {doc['answer']}", {**meta, "finish_reason": "stop"})
    if i == 2:  # every failure a different wrong answer
        return RolloutText(f" {steps} #### {5000 + r}", {**meta, "finish_reason": "stop"})
    if r % 2 == 1:  # a convergent wrong answer
        return RolloutText(f" {steps} #### -1", {**meta, "finish_reason": "stop"})
    return RolloutText(f" {steps[:5]}", {**meta, "finish_reason": "length"})  # cut off


@pytest.fixture(scope="module")
def arith_run() -> dict:
    return run_task("failtrace_arith", scripted_lm(_script), limit=3)


def test_bundled_data_is_the_generator_output(tmp_path: Path):
    regenerated = arith.write_jsonl(tmp_path / "arith.jsonl")
    assert regenerated.read_bytes() == arith_data_path().read_bytes()
    rows = [json.loads(line) for line in arith_data_path().open()]
    assert len(rows) == 100
    assert [r["mechanism"] for r in rows] == [m for m in arith.MECHANISMS for _ in range(25)]
    assert len({r["problem_id"] for r in rows}) == len({r["question"] for r in rows}) == 100
    longest = max(len(" " + r["solution"]) for r in rows)
    assert longest == 73  # the YAML's max_gen_toks (128) covers it at one token per char


def test_planted_mechanisms_are_what_the_data_says():
    """Every problem has the shape its mechanism needs (module docstring of ``arith``)."""
    for row in arith.generate():
        question, mechanism = row["question"], row["mechanism"]
        results = [int(step.split("= ")[1]) for step in row["solution"].split(". ")[:-1]]
        assert results[-1] == int(row["answer"]) and row["level"] == len(results)
        multiplies = question.count("Multiply")
        if mechanism == "beyond_reach":
            assert results[-1] < 0 and all(0 <= r <= 9 for r in results[:-1])
        else:
            assert all(0 <= r <= 9 for r in results)
        if mechanism == "forgotten_skill":
            assert (row["level"], multiplies) == (3, 1) and question.endswith(
                tuple(f"Multiply by {d}." for d in range(2, 10))
            )
        else:
            assert multiplies == 0
        expected_levels = {"slip": {2, 3}, "verbosity": {5, 6}, "beyond_reach": {2, 3}}
        assert row["level"] in expected_levels.get(mechanism, {3})


def test_every_repeat_is_sent_with_the_stated_settings(arith_run):
    sample = arith_run["samples"]["failtrace_arith"][0]
    assert len(sample["resps"][0]) == N
    context, gen_kwargs = sample["arguments"][0]
    assert context == "Question: Start with 4. Add 2. Add 3.\nAnswer:"
    assert gen_kwargs == {
        "until": ["\n"],
        "do_sample": True,
        "temperature": 0.6,
        "max_gen_toks": 128,
    }


def test_per_doc_metrics_are_exact(arith_run):
    samples = {s["doc_id"]: s for s in arith_run["samples"]["failtrace_arith"]}
    for i, c in CORRECT.items():
        s = samples[i]
        assert s["pass@1"] == c / N
        assert s["pass@4"] == pytest.approx(_pass_at_k(N, c, 4), abs=1e-12)
        assert s["pass@16"] == (1.0 if c else 0.0)
        assert s["n_rollouts"] == N and s["n_failed_rollouts"] == N - c
    # doc 0: no failure -> not a failure unit, its failure features are undefined (None)
    assert samples[0]["maj@16"] == 1.0
    for key in ("answer_entropy", "mode_share", "truncation_rate", "mean_generated_tokens"):
        assert samples[0][key] is None
    # doc 1: 5 correct; failures r=5..15: six "-1" (odd r), five cut off (even r)
    s = samples[1]
    assert s["maj@16"] == 0.0  # "-1" (6 votes) beats the right answer (5 votes)
    h = -(6 / 11) * math.log(6 / 11) - (5 / 11) * math.log(5 / 11)
    assert s["answer_entropy"] == pytest.approx(h / math.log(11), abs=1e-12)
    assert s["mode_share"] == pytest.approx(6 / 11)
    assert s["truncation_rate"] == pytest.approx(5 / 11)
    assert s["no_answer_rate"] == pytest.approx(5 / 11)
    assert s["mean_generated_tokens"] == pytest.approx(sum(20 + r for r in range(5, 16)) / 11)
    assert s["max_generated_tokens"] == 35
    # doc 2: sixteen different wrong answers
    s = samples[2]
    assert (s["maj@16"], s["answer_entropy"], s["mode_share"]) == (0.0, 1.0, 1 / 16)
    assert s["truncation_rate"] == 0.0


def test_rollout_records_carry_every_repeat(arith_run):
    samples = {s["doc_id"]: s for s in arith_run["samples"]["failtrace_arith"]}
    records = samples[1]["failtrace_rollouts"]
    assert [r["repeat"] for r in records] == list(range(N))
    assert records[0] == {
        "task": "failtrace_arith",
        "doc_id": None,  # the backend did not say; the samples line's doc_id is authoritative
        "problem_id": "arith-slip-001",
        "repeat": 0,
        "seed": 1000,
        "answer": "8",
        "correct": True,
        "generated_tokens": 20,
        "finish_reason": "stop",
    }
    assert records[5]["answer"] == "-1" and records[5]["correct"] is False
    assert records[6]["answer"] is None and records[6]["finish_reason"] == "length"
    assert [r["seed"] for r in records] == [1000 + r for r in range(N)]
    assert samples[1]["filtered_resps"][0][6] == "[invalid]"


def test_aggregates_skip_undefined_values(arith_run):
    res = arith_run["results"]["failtrace_arith"]
    assert res["pass@1,failtrace"] == pytest.approx((1 + 5 / 16 + 0) / 3)
    assert res["maj@16,failtrace"] == pytest.approx(1 / 3)
    samples = {s["doc_id"]: s for s in arith_run["samples"]["failtrace_arith"]}
    # mean over the two failure units only (doc 0 has no failure)
    expected = (samples[1]["answer_entropy"] + samples[2]["answer_entropy"]) / 2
    assert res["answer_entropy,failtrace"] == pytest.approx(expected)
    assert res["truncation_rate,failtrace"] == pytest.approx((5 / 11 + 0) / 2)
    assert res["failtrace_rollouts,failtrace"] == 3 * N


def test_stock_backend_metadata_is_unknown_not_guessed():
    """A plain-str backend: repeat = position, seed/tokens/finish reason None, no truncation."""

    def plain(doc: dict, r: int) -> str:
        return f" #### {doc['answer']}" if r < 3 else " #### 0"

    run = run_task("failtrace_arith", scripted_lm(plain), limit=1)
    s = run["samples"]["failtrace_arith"][0]
    records = s["failtrace_rollouts"]
    assert [r["repeat"] for r in records] == list(range(N))
    assert {(r["seed"], r["generated_tokens"], r["finish_reason"]) for r in records} == {
        (None, None, None)
    }
    assert s["pass@1"] == 3 / N
    assert s["truncation_rate"] is None and s["mean_generated_tokens"] is None
    assert s["mode_share"] == 1.0
    assert run["results"]["failtrace_arith"]["truncation_rate,failtrace"] is None


def test_fewer_repeats_than_k_gives_undefined_pass_at_k(tmp_path: Path):
    """repeats=2: pass@4 is undefined (None), never a flattering 1.0."""
    include = tasks_dir() / "failtrace_arith" / "failtrace_arith.yaml"
    (tmp_path / "two.yaml").write_text(
        f"include: {include}\ntask: failtrace_arith_two\nrepeats: 2\n", encoding="utf-8"
    )
    run = run_task(
        "failtrace_arith_two",
        scripted_lm(lambda doc, r: f" #### {doc['answer']}" if r == 0 else " #### 0"),
        include_path=tmp_path,
        limit=2,
    )
    s = run["samples"]["failtrace_arith_two"][0]
    assert (s["pass@1"], s["pass@2"], s["pass@4"], s["maj@2"]) == (0.5, 1.0, None, 1.0)
    assert run["results"]["failtrace_arith_two"]["pass@4,failtrace"] is None


def test_lm_eval_writer_round_trips_as_strict_json(arith_run, tmp_path: Path):
    """lm-eval's own EvaluationTracker writes the files; they parse as strict JSON."""
    from lm_eval.loggers import EvaluationTracker

    expected = {
        s["doc_id"]: s["failtrace_rollouts"] for s in arith_run["samples"]["failtrace_arith"]
    }
    results = copy.deepcopy(arith_run)  # the writer rewrites samples in place
    samples = results.pop("samples")
    tracker = EvaluationTracker(output_path=str(tmp_path))
    tracker.save_results_aggregated(results=results, samples=samples)
    tracker.save_results_samples(task_name="failtrace_arith", samples=samples["failtrace_arith"])

    def strict(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    (samples_file,) = tmp_path.rglob("samples_failtrace_arith_*.jsonl")
    lines = [json.loads(line, parse_constant=strict) for line in samples_file.open()]
    assert {line["doc_id"]: line["failtrace_rollouts"] for line in lines} == expected
    assert lines[0]["answer_entropy"] is None
    (results_file,) = tmp_path.rglob("results_*.json")
    written = json.loads(results_file.read_text(), parse_constant=strict)
    assert written["results"]["failtrace_arith"]["failtrace_rollouts,failtrace"] == 3 * N
