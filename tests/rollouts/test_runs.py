"""A run's model name is short and stable: a checkpoint path gives its folder name (issue 8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lm_failtrace.rollouts import run_model_name, short_model_name


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("/home/me/ckpts/specialist", "specialist"),
        ("/home/me/ckpts/specialist/", "specialist"),
        ("./runs/step-900", "step-900"),
        ("../step-900/", "step-900"),
        ("~/models/my-sft", "my-sft"),
        ("ckpt/", "ckpt"),
        ("Qwen/Qwen3-0.6B", "Qwen/Qwen3-0.6B"),  # a hub id is a name, not a path
        ("gpt2", "gpt2"),
        ("s3://bucket/ckpt", "s3://bucket/ckpt"),  # a URI is not a local path
    ],
)
def test_short_model_name(value, name):
    assert short_model_name(value) == name


def test_an_existing_relative_directory_is_a_path(tmp_path, monkeypatch):
    (tmp_path / "org" / "model").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert short_model_name("org/model") == "model"
    assert short_model_name(".") == tmp_path.name


def _results(folder: Path, doc: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results_2025-01-01T00-00-00.json").write_text(json.dumps(doc))
    return folder


@pytest.mark.parametrize(
    ("doc", "name"),
    [
        ({"model_name": "/abs/lm_failtrace/models/tiny/specialist"}, "specialist"),
        ({"model_name": "Qwen/Qwen3-0.6B"}, "Qwen/Qwen3-0.6B"),
        ({"config": {"model_args": "pretrained=/abs/ckpt/,ancestor=/abs/base"}}, "ckpt"),
        (
            {"config": {"model_args": {"model": "meta-llama/Llama-3.1-8B"}}},
            "meta-llama/Llama-3.1-8B",
        ),
    ],
)
def test_run_model_name_shortens_what_lm_eval_recorded(tmp_path, doc, name):
    folder = _results(tmp_path / "__abs__ckpt", doc)
    assert run_model_name(folder, "2025-01-01T00-00-00") == name


def test_without_results_the_folder_name_is_kept(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert run_model_name(folder, "2025-01-01T00-00-00") == "my-model"
