"""The trainer script: reproducible weights, training data disjoint from the bundled evaluation."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest

from lm_failtrace.models import TINY_ROLES, tiny_model_path
from lm_failtrace.record import arith


def _train(trainer, out, steps: int, *extra: str) -> None:
    subprocess.run(
        [sys.executable, trainer.__file__, "--out", str(out), "--steps", str(steps), *extra],
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.mark.slow
def test_same_seed_same_weights(trainer, tmp_path):
    pytest.importorskip("torch")
    from safetensors.torch import load_file

    _train(trainer, tmp_path / "a", 3)
    _train(trainer, tmp_path / "b", 3)
    weights = {}
    for role in TINY_ROLES:
        a = (tmp_path / "a" / role / "model.safetensors").read_bytes()
        assert a == (tmp_path / "b" / role / "model.safetensors").read_bytes(), role
        weights[role] = load_file(tmp_path / "a" / role / "model.safetensors")
        # everything but the weights is exactly what is bundled (same tokenizer, same config)
        for name in (
            "config.json",
            "generation_config.json",
            "tokenizer.json",
            "tokenizer_config.json",
        ):
            bundled = (tiny_model_path(role) / name).read_bytes()
            assert (tmp_path / "a" / role / name).read_bytes() == bundled, (role, name)
    # the specialist stage really trained on top of the ancestor
    changed = [
        k for k in weights["ancestor"] if not weights["ancestor"][k].equal(weights["specialist"][k])
    ]
    assert changed
    # post-training a saved ancestor (--ancestor) gives the full run's specialist, byte for byte
    _train(trainer, tmp_path / "c", 3, "--ancestor", str(tmp_path / "a" / "ancestor"))
    specialist = (tmp_path / "c" / "specialist" / "model.safetensors").read_bytes()
    assert specialist == (tmp_path / "a" / "specialist" / "model.safetensors").read_bytes()


def test_bad_steps_is_a_usage_error(trainer, tmp_path):
    result = subprocess.run(
        [sys.executable, trainer.__file__, "--out", str(tmp_path), "--steps", "0"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "--steps must be at least 1" in result.stderr
    assert not any(tmp_path.iterdir())


def test_training_problems_exclude_the_bundled_evaluation(trainer):
    exclude = trainer.evaluation_questions()
    assert exclude == {p["question"] for p in arith.generate()}
    for stage in (s for stages in trainer.RECIPE.values() for s in stages):
        stream = trainer.training_batches(stage, exclude, trainer.BATCH_SIZE)
        seen_levels = set()
        for batch in itertools.islice(stream, 60):
            for text in batch:
                question = text.split("\n")[0].removeprefix("Question: ")
                assert question not in exclude
                seen_levels.add(question.count(".") - 1)
        assert seen_levels == set(stage.levels)


def test_exclusion_really_filters(trainer):
    """Level-2 questions collide with the evaluation set often enough that the filter acts."""
    exclude = trainer.evaluation_questions()
    stage = trainer.Stage("probe", 1, 1e-3, (2,), trainer.TRAIN_SEED)
    unfiltered = list(itertools.islice(trainer.training_batches(stage, frozenset(), 50), 20))
    hits = sum(
        text.split("\n")[0].removeprefix("Question: ") in exclude
        for batch in unfiltered
        for text in batch
    )
    assert hits > 0
