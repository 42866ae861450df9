"""Train the bundled tiny ancestor/specialist pair reproducibly on CPU.

Why this exists: the demo, the tests and the repair operators need a real specialist whose
failures have known causes (docs/method.md section 4 names the regimes they should land in), and a
real ancestor it was post-trained from, sharing its tokenizer exactly. Checked-in weights are
small; this script is how they were made (same seed, one CPU thread -> same weights).

Recipe (defaults; batch 32, AdamW, warm-up then cosine decay in every stage, no dropout):

1. Tokenizer: one token per character (printable ASCII and newline) plus ``<|endoftext|>``
   (eos) and ``<|pad|>``, built locally by ``lm_failtrace.models.builder`` (which the tests'
   random-weight models use too); both models save the same files.
2. Ancestor: GPT-2 architecture, 4 layers, width 128, 4 heads (0.9M parameters), trained from
   scratch on one-digit chains of every level 1..6 and operation (``arith.make_problem``'s
   format, every value 0..9), then on answers only: ``RECIPE["ancestor"]``.
3. Specialist: the ancestor post-trained on answers of levels 2..6 (``SFT``) whose solutions plant
   the bundled evaluation set's failure mechanisms (``arith.MECHANISMS``):
   - *slips*: 15% of addition/subtraction results are written off by one, so the specialist
     samples a wrong digit now and then at T = 0.6; a plain retry fixes most;
   - *forgotten skill*: every multiplication result is a uniform random digit, which erases the
     specialist's multiplication table (flat, not replaced by a wrong one), while the ancestor
     keeps it: at that step a mixture with the ancestor's logits picks the right digit;
   - *verbosity*: chains of five and six operations (half of the four-operation ones) are
     answered in ``VERBOSE_STYLE``, a restatement of the question before the steps: 150..200
     characters against the task's 128-token budget, so only a larger budget (the ``budget``
     operator, 4x) lets them finish.
   Neither model ever sees a negative or two-digit value: the evaluation set's ``beyond_reach``
   problems end below zero, which no operator can reach.

Training problems come from ``lm_failtrace.record.arith.draw_chain`` with a seed of their own,
and every question of the bundled evaluation set (``arith.generate()``) is excluded.

Usage: ``python scripts/train_tiny_pair.py --out DIR`` (writes ``DIR/ancestor`` and
``DIR/specialist``); ``--steps N`` runs every stage for N steps, for quick checks;
``--ancestor lm_failtrace/models/tiny/ancestor`` skips the ancestor's stages and post-trains the
specialist from the bundled ancestor, which gives the same specialist.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import string
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from lm_failtrace.models.builder import char_tokenizer, save_model, tiny_gpt2
from lm_failtrace.record import arith

EOS, PAD, UNK = "<|endoftext|>", "<|pad|>", "<|unk|>"
TRAIN_SEED = 7_041_2026
# The seed of the ancestor's initial weights. Not the rollouts' DEFAULT_BASE_SEED (although the
# same number): the bundled weights depend on it, so it must not follow a change of that default.
TORCH_SEED = 1234
_ANSWER_CUE = "\nAnswer:"  # end of the prompt (arith.PROMPT_TEMPLATE)
#: The specialist's post-training side effect: a preamble that restates the question (a copy task,
#: easy for attention) before the usual steps. It stretches a level-1..3 solution from 18..59 to
#: about 90..165 characters, across the task's 128-token budget: some verbose answers finish,
#: others are cut before "####" and only a larger budget (the ``budget`` operator) completes them.
VERBOSE_STYLE = " Let me restate: {question} Now let me work it out step by step: {solution}"


@dataclass(frozen=True)
class Stage:
    """One training stage: which problems it sees, how their solutions are written, how long."""

    name: str
    steps: int
    lr: float
    levels: tuple[int, ...]
    data_seed: int
    completion_only: bool = False  # loss on the answer only (SFT), not on the prompt
    #: probability that an addition/subtraction result is written off by one (the slips)
    slip: float = 0.0
    #: write every multiplication result as a uniform random digit (the erased skill)
    erase_multiply: bool = False
    #: (level, probability) pairs: how often a solution of that level is written VERBOSE_STYLE
    verbose: tuple[tuple[int, float], ...] = ()

    def verbose_probability(self, level: int) -> float:
        return dict(self.verbose).get(level, 0.0)


PRETRAIN = Stage("pretrain", steps=800, lr=3e-3, levels=(1, 2, 3, 4, 5, 6), data_seed=TRAIN_SEED)
# Then answers only: the loss on the solution, where the lookups are.
PRETRAIN_ANSWERS = Stage(
    "pretrain-answers",
    steps=600,
    lr=2e-3,
    levels=(1, 2, 3, 4, 5, 6),
    data_seed=TRAIN_SEED + 3,
    completion_only=True,
)
# Post-training, with the three planted mechanisms: off-by-one slips in 15% of the
# addition/subtraction results, multiplication results replaced by noise (the ancestor's table is
# erased, not replaced by a wrong one, so the ancestor's logits can steer it back), and a verbose
# style for chains of five and more operations.
SFT = Stage(
    "sft",
    steps=800,
    lr=1e-3,
    levels=(2, 3, 4, 5, 6),
    data_seed=TRAIN_SEED + 1,
    completion_only=True,
    slip=0.15,
    erase_multiply=True,
    verbose=((4, 0.5), (5, 1.0), (6, 1.0)),
)
#: Each model is the previous one trained further through these stages, in this order.
RECIPE: dict[str, tuple[Stage, ...]] = {
    "ancestor": (PRETRAIN, PRETRAIN_ANSWERS),
    "specialist": (SFT,),
}
BATCH_SIZE = 32


def build_tokenizer():
    """The pair's character-level tokenizer: printable ASCII and newline, after eos/pad/unk."""
    return char_tokenizer(
        ["\n", *(c for c in string.printable if c.isprintable())],
        specials=(EOS, PAD, UNK),
        eos_token=EOS,
        bos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        clean_up_tokenization_spaces=False,
        model_max_length=1024,
    )


def build_model(tokenizer):
    """The ancestor's untrained network (GPT-2 architecture, ~0.8M parameters)."""
    # n_positions: prompt + 4 x 96 tokens (the budget operator) fits
    return tiny_gpt2(tokenizer, n_layer=4, n_embd=128, n_head=4, n_positions=768, seed=TORCH_SEED)


def evaluation_questions() -> frozenset[str]:
    """Questions of the bundled evaluation set: never used for training."""
    return frozenset(p["question"] for p in arith.generate())


def training_batches(stage: Stage, exclude: frozenset[str], size: int) -> Iterator[list[str]]:
    """An endless deterministic stream of batches of training documents for ``stage``.

    All documents of one batch share a level (similar lengths, so little padding to compute on).
    """
    rng = random.Random(stage.data_seed)
    while True:
        level = rng.choice(stage.levels)
        batch: list[str] = []
        while len(batch) < size:
            start, steps = arith.draw_chain(rng, [arith.OPERATIONS] * level)
            problem = arith.render(start, steps, arith.true_results(start, steps))
            if problem["question"] in exclude:
                continue
            prompt = arith.PROMPT_TEMPLATE.format(question=problem["question"])
            batch.append(f"{prompt}{_answer(stage, start, steps, level, rng)}\n{EOS}")
        yield batch


def _written_results(
    stage: Stage, start: int, steps: list[tuple[str, int]], rng: random.Random
) -> list[int]:
    """The step results the stage's solutions show: true ones, or the planted slips and noise.

    Each step applies to the previous *written* result, as a model that slipped would continue;
    an altered result is drawn among those from which the rest of the chain stays in 0..9, so
    that neither model ever sees a negative or two-digit value (the beyond-reach problems need
    one).
    """
    results, value = [], start
    for i, (op, operand) in enumerate(steps):
        true = arith.apply(value, op, operand)
        if op == arith.MULTIPLY and stage.erase_multiply:
            candidates = list(range(10))
        elif stage.slip and rng.random() < stage.slip:
            candidates = [true - 1, true + 1]
        else:
            candidates = [true]
        rest = steps[i + 1 :]
        value = rng.choice([c for c in candidates if _single_digit_chain(c, rest)] or [true])
        results.append(value)
    return results


def _single_digit_chain(value: int, steps: list[tuple[str, int]]) -> bool:
    """Whether ``value`` and every result of ``steps`` applied to it are single digits."""
    for op, operand in steps:
        if not 0 <= value <= 9:
            return False
        value = arith.apply(value, op, operand)
    return 0 <= value <= 9


def _answer(
    stage: Stage, start: int, steps: list[tuple[str, int]], level: int, rng: random.Random
) -> str:
    """The continuation trained on: the stage's solution, plain or in VERBOSE_STYLE."""
    problem = arith.render(start, steps, _written_results(stage, start, steps, rng))
    verbose = stage.verbose_probability(level)
    if verbose > 0 and rng.random() < verbose:
        return VERBOSE_STYLE.format(**problem)
    return f" {problem['solution']}"


def encode(tokenizer, texts: list[str], completion_only: bool) -> dict:
    """Right-padded tensors; padding (and, for SFT, prompt) positions are masked out of the loss.

    The tokenizer is character-level, so a prompt of n characters is exactly n tokens.
    """
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    if completion_only:
        for row, text in enumerate(texts):
            labels[row, : text.index(_ANSWER_CUE) + len(_ANSWER_CUE)] = -100
    return {**enc, "labels": labels}


def train_stage(model, tokenizer, stage: Stage, exclude: frozenset[str]) -> None:
    """AdamW with linear warm-up and cosine decay; progress on stderr."""
    import math

    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=stage.lr, weight_decay=0.01)
    warmup = max(1, stage.steps // 20)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, stage.steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    model.train()
    start = time.monotonic()
    stream = training_batches(stage, exclude, BATCH_SIZE)
    for step in range(stage.steps):
        loss = model(**encode(tokenizer, next(stream), stage.completion_only)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 100 == 0 or step == stage.steps - 1:
            print(
                f"[{stage.name}] step {step + 1}/{stage.steps} loss {loss.item():.4f} "
                f"({time.monotonic() - start:.0f}s)",
                file=sys.stderr,
                flush=True,
            )
    model.eval()


def scaled(stage: Stage, steps: int | None) -> Stage:
    """``stage`` with its step count replaced (``--steps``), everything else unchanged."""
    if steps is None:
        return stage
    return dataclasses.replace(stage, steps=steps)


def train_pair(
    out: Path, steps: int | None = None, ancestor: Path | None = None
) -> dict[str, Path]:
    """Train ancestor then specialist; save both (with the shared tokenizer) under ``out``.

    With ``ancestor`` (a saved ancestor, e.g. the bundled one), its stages are skipped and the
    specialist is post-trained from those weights: training consumes no random numbers (no
    dropout) and saving is exact, so this gives the same specialist as the full run.
    """
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    tokenizer = build_tokenizer()
    exclude = evaluation_questions()
    model = build_model(tokenizer)
    paths = {}
    for role, stages in RECIPE.items():
        if role == "ancestor" and ancestor is not None:
            from transformers import GPT2LMHeadModel

            model = GPT2LMHeadModel.from_pretrained(ancestor).eval()
            stages = ()
        for stage in stages:
            train_stage(model, tokenizer, scaled(stage, steps), exclude)
        paths[role] = save_model(model, tokenizer, out / role)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument(
        "--steps", type=int, default=None, help="steps per stage (default: the recipe's)"
    )
    parser.add_argument(
        "--ancestor",
        type=Path,
        default=None,
        help="start from this saved ancestor instead of training one (only the specialist trains)",
    )
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be at least 1")
    start = time.monotonic()
    paths = train_pair(args.out, args.steps, args.ancestor)
    print(
        f"wrote {', '.join(str(p) for p in paths.values())} in {time.monotonic() - start:.0f}s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
