"""``failtrace make-task`` on lm-eval's built-in gsm8k, run end to end by the real lm-eval.

The variant is written by the real CLI; its data source is then pointed at a local copy in
GSM8K's schema (the hub is unreachable here), exactly as a user would for offline data.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import local_data_variant, run_task, scripted_lm, write_jsonl

from lm_failtrace.errors import InputError
from lm_failtrace.record.make_task import write_variant
from lm_failtrace.record.rollout_text import RolloutText

FAILTRACE = [str(Path(sys.executable).parent / "failtrace")]


def _row(i: int) -> dict:
    return {
        "question": f"Ann has {i} apples and buys {i + 2} more. How many apples does she have?",
        "answer": f"{i} + {i + 2} = <<{i}+{i + 2}={2 * i + 2}>>{2 * i + 2}\n#### {2 * i + 2}",
    }


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [*FAILTRACE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _script(doc: dict, r: int) -> str:
    """r=0: '#### N' (both filters right); r=1: 'The answer is N' (only flexible-extract);
    r=2: a wrong number; r=3: no number at all."""
    n = doc["answer"].split("####")[-1].strip()
    text = [f"So {n}.\n#### {n}", f"The answer is {n}", "#### 999", "no idea"][r]
    return RolloutText(" " + text, {"repeat": r, "seed": 7 + r})


@pytest.fixture(scope="module")
def variant_run(tmp_path_factory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("make_task")
    made = _cli(
        "make-task", "gsm8k", "-o", str(tmp / "variant"), "--repeats", "4",
        "--max-gen-toks", "64", cwd=tmp,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    path = Path(made.stdout.strip())
    train = write_jsonl(tmp / "train.jsonl", [_row(i) for i in range(10, 16)])
    test = write_jsonl(tmp / "test.jsonl", [_row(i) for i in range(3)])
    folder = local_data_variant(
        tmp / "run", path, "gsm8k_failtrace", {"train": train, "test": test}
    )
    return path, run_task("gsm8k_failtrace", scripted_lm(_script), include_path=folder)


def test_variant_keeps_base_prompt_and_sets_sampling(variant_run):
    path, run = variant_run
    assert path.name == "gsm8k_failtrace.yaml"
    sample = run["samples"]["gsm8k_failtrace"][0]
    context, gen_kwargs = sample["arguments"][0]
    assert context.count("Question: ") == 6  # the base task's 5 shots + the problem
    assert context.endswith(f"Question: {_row(0)['question']}\nAnswer:")
    assert gen_kwargs == {
        "until": ["Question:", "</s>", "<|im_end|>"],
        "do_sample": True,
        "temperature": 0.6,
        "max_gen_toks": 64,
    }
    assert len(sample["resps"][0]) == 4


def test_both_base_filters_score_every_repeat(variant_run):
    _, run = variant_run
    by_filter = {}
    for sample in run["samples"]["gsm8k_failtrace"]:
        by_filter.setdefault(sample["filter"], []).append(sample)
    assert sorted(by_filter) == ["flexible-extract", "strict-match"]
    for sample in by_filter["strict-match"]:
        assert [r["correct"] for r in sample["failtrace_rollouts"]] == [True, False, False, False]
        assert [r["answer"] for r in sample["failtrace_rollouts"]][1:] == [None, "999", None]
        assert (sample["pass@1"], sample["pass@4"], sample["maj@4"]) == (0.25, 1.0, 1.0)
    for sample in by_filter["flexible-extract"]:
        assert [r["correct"] for r in sample["failtrace_rollouts"]] == [True, True, False, False]
        assert sample["pass@1"] == 0.5 and sample["n_failed_rollouts"] == 2
        assert sample["answer_entropy"] == 1.0  # "999" and no answer, one each
    records = by_filter["strict-match"][0]["failtrace_rollouts"]
    assert [r["seed"] for r in records] == [7, 8, 9, 10]
    assert {r["task"] for r in records} == {"gsm8k_failtrace"}
    assert records[0]["problem_id"].startswith("gsm8k-")
    results = run["results"]["gsm8k_failtrace"]
    assert results["pass@1,strict-match"] == 0.25
    assert results["pass@1,flexible-extract"] == 0.5
    assert results["failtrace_rollouts,strict-match"] == 12


def test_written_yaml_includes_base_and_keeps_its_scoring(variant_run):
    path, _ = variant_run
    text = path.read_text()
    assert "!function 'lm_failtrace.record.tasks.RecordRollouts'" in text
    doc = yaml.load(text, Loader=_IgnoreTags)
    assert doc["include"].endswith(os.path.join("lm_eval", "tasks", "gsm8k", "gsm8k.yaml"))
    assert doc["repeats"] == 4
    assert doc["metric_list"][0]["regexes_to_ignore"] == [",", "\\$", "(?s).*#### ", "\\.$"]
    steps = doc["filter_list"][0]["filter"][0]["steps"]
    assert steps == [{"function": "regex", "regex_pattern": "#### (\\-?[0-9\\.\\,]+)"}]


class _IgnoreTags(yaml.SafeLoader):
    """Reads a task YAML as data, without importing its ``!function`` targets."""


_IgnoreTags.add_multi_constructor("!", lambda loader, suffix, node: None)


def test_unknown_task_is_exit_2_with_suggestions(tmp_path: Path):
    result = _cli("make-task", "gsm8kk", "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown lm-eval task 'gsm8kk'; did you mean gsm8k" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def builtin_tasks():
    from lm_eval.tasks import TaskManager

    return TaskManager()


@pytest.mark.parametrize(
    ("base", "message"),
    [
        ("hellaswag", "is a multiple_choice task; failtrace needs generate_until"),
        ("gsm8k_cot_self_consistency", "uses majority_vote, which selects or merges repeats"),
        ("mmlu", "is an lm-eval group or tag, not one task"),
    ],
)
def test_tasks_it_cannot_reproduce_are_refused(builtin_tasks, tmp_path, base, message):
    with pytest.raises(InputError, match=message):
        write_variant(base, tmp_path, task_manager=builtin_tasks)
    assert list(tmp_path.iterdir()) == []
