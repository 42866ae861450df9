"""failtrace_gsm8k's shipped definition, run by the real lm-eval on a local GSM8K-schema file.

The hub is unreachable here, so the test includes the shipped YAML unchanged and points only its
data source at a small JSONL file in GSM8K's schema (question, answer ending "#### N").
"""

from __future__ import annotations

import hashlib

import pytest
import yaml
from conftest import local_data_variant, run_task, scripted_lm, write_jsonl

from lm_failtrace.record.rollout_text import RolloutText
from lm_failtrace.record.tasks import tasks_dir

ROWS = [
    {
        "question": "Tom has 3 boxes of 4 pens. He gives away 5 pens. How many pens are left?",
        "answer": "He had 3 * 4 = <<3*4=12>>12 pens.\n12 - 5 = <<12-5=7>>7 pens left.\n#### 7",
    },
    {
        "question": "A shop sells 1,200 apples a day. How many apples does it sell in 2 days?",
        "answer": "1,200 * 2 = <<1200*2=2400>>2400 apples.\n#### 2400",
    },
]

#: How each of the 16 repeats answers: the three accepted answer styles, then failures.
STYLES = (
    [
        "So the answer is {a}. The answer is {a}.",  # "The answer is"
        "... #### {a}",  # "####"
        "Thus {a}",  # last number
        "The answer is ${a}.",  # dollar sign and trailing period
    ]
    + ["The answer is 1."] * 6
    + ["I am not sure."] * 6
)


def _script(doc: dict, r: int) -> str:
    target = doc["answer"].split("####")[-1].strip()
    return RolloutText(" " + STYLES[r].format(a=target), {"repeat": r, "finish_reason": "stop"})


@pytest.fixture(scope="module")
def gsm8k_run(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("gsm8k")
    data = write_jsonl(tmp / "test.jsonl", ROWS)
    include = tasks_dir() / "failtrace_gsm8k" / "failtrace_gsm8k.yaml"
    folder = local_data_variant(tmp / "tasks", include, "failtrace_gsm8k", {"test": data})
    return run_task("failtrace_gsm8k", scripted_lm(_script), include_path=folder)


def test_chain_of_thought_prompt_and_settings(gsm8k_run):
    sample = gsm8k_run["samples"]["failtrace_gsm8k"][0]
    context, gen_kwargs = sample["arguments"][0]
    assert context.count("Question: ") == 9  # 8 worked exemplars + the problem
    assert "So he gave Denny 20 - 12 = 8. The answer is 8.\n\n" in context
    assert context.endswith(f"Question: {ROWS[0]['question']}\nAnswer:")
    assert gen_kwargs["do_sample"] is True and gen_kwargs["temperature"] == 0.6
    assert gen_kwargs["max_gen_toks"] == 512
    assert len(sample["resps"][0]) == 16


def test_answers_extracted_and_scored(gsm8k_run):
    for sample in gsm8k_run["samples"]["failtrace_gsm8k"]:
        records = sample["failtrace_rollouts"]
        target = sample["target"]
        assert [r["correct"] for r in records] == [True] * 4 + [False] * 12
        assert [r["answer"] for r in records[:4]] == [target] * 4
        assert {r["answer"] for r in records[4:10]} == {"1"}
        assert {r["answer"] for r in records[10:]} == {None}
        assert sample["pass@1"] == 4 / 16
        assert sample["mode_share"] == 0.5 and sample["no_answer_rate"] == 0.5
    assert gsm8k_run["samples"]["failtrace_gsm8k"][1]["target"] == "2400"


def test_problem_id_is_a_stable_hash_of_the_question(gsm8k_run):
    ids = set()
    for sample in gsm8k_run["samples"]["failtrace_gsm8k"]:
        digest = hashlib.sha1(sample["doc"]["question"].encode("utf-8")).hexdigest()[:12]
        assert {r["problem_id"] for r in sample["failtrace_rollouts"]} == {f"gsm8k-{digest}"}
        ids.add(f"gsm8k-{digest}")
    assert len(ids) == len(ROWS)


class _IgnoreTags(yaml.SafeLoader):
    """Reads the shipped YAML as data, without importing its ``!function`` targets."""


_IgnoreTags.add_multi_constructor("!", lambda loader, suffix, node: None)


def test_shipped_yaml_names_the_hub_dataset():
    text = (tasks_dir() / "failtrace_gsm8k" / "failtrace_gsm8k.yaml").read_text()
    config = yaml.load(text, Loader=_IgnoreTags)
    assert (config["dataset_path"], config["dataset_name"], config["test_split"]) == (
        "openai/gsm8k",
        "main",
        "test",
    )
    assert config["repeats"] == 16
