"""Train the bundled tiny ancestor/specialist pair reproducibly on CPU.

Why this exists: the demo, the tests and the repair operators need a real specialist whose
failures are of several kinds (docs/method.md section 4), and a real ancestor it was post-trained
from, sharing its tokenizer exactly. Checked-in weights are small; this script is how they were
made, so anyone can rebuild them byte for byte (same seed, one CPU thread -> same weights).

Recipe (defaults; batch 32, AdamW, warm-up then cosine decay in every stage, no dropout):

1. Tokenizer: one token per character (printable ASCII and newline) plus ``<|endoftext|>``
   (eos) and ``<|pad|>``, built locally by ``lm_failtrace.models.builder`` (which the tests'
   random-weight models use too); both models save the same files.
2. Ancestor: GPT-2 architecture, 4 layers, width 128, 4 heads (0.9M parameters), trained from
   scratch on every level 1..6 and operation, then on a mix weighted toward short chains, then on
   answers only (loss on the solution, not the prompt): ``RECIPE["ancestor"]``.
3. Specialist: the ancestor fine-tuned on answers of levels 1..2 only, with problems containing a
   multiplication kept with probability 0.15 (``SFT``): clearly better on short add/subtract
   chains, and over-fit away from what the ancestor still knows elsewhere; then a short style
   round (``VERBOSE``) on levels 1..3 in which most level-2/3 answers (20% of level-1 ones) open
   with a restatement of the question (``VERBOSE_STYLE``). That side effect of post-training is
   what makes some failures truncations: a verbose level-2 answer is 118..138 characters, a
   level-3 one 142..172, against the task's 128-token budget, and the ``budget`` operator (4x)
   lets them finish.

Training problems come from ``lm_failtrace.record.arith.make_problem`` with a seed of their own,
and every question of the bundled evaluation set (``arith.generate()``) is excluded.

Usage: ``python scripts/train_tiny_pair.py --out DIR`` (writes ``DIR/ancestor`` and
``DIR/specialist``); ``--steps N`` runs every stage for N steps, for quick checks;
``--ancestor lm_failtrace/models/tiny/ancestor`` skips the ancestor's stages (about 25 minutes)
and post-trains the specialist from the bundled ancestor, which gives the same specialist.
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
    """One training stage: which problems it sees and for how long."""

    name: str
    steps: int
    lr: float
    levels: tuple[int, ...]
    keep_multiply: float  # probability of keeping a problem that contains a multiplication
    data_seed: int
    completion_only: bool = False  # loss on the answer only (SFT), not on the prompt
    # (level, probability) pairs: how often a solution of that level is written VERBOSE_STYLE
    verbose: tuple[tuple[int, float], ...] = ()

    def verbose_probability(self, level: int) -> float:
        return dict(self.verbose).get(level, 0.0)


PRETRAIN = Stage(
    "pretrain",
    steps=700,
    lr=3e-3,
    levels=(1, 2, 3, 4, 5, 6),
    keep_multiply=1.0,
    data_seed=TRAIN_SEED,
)
# A second pre-training pass weighted toward short chains: at this size and budget, copying
# operands and carrying digits are learnt far faster on short problems than on long ones.
PRETRAIN_SHORT = Stage(
    "pretrain-short",
    steps=1000,
    lr=2e-3,
    levels=(1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 6),
    keep_multiply=1.0,
    data_seed=TRAIN_SEED + 2,
)
# Then answers only, weighted further toward short chains, where arithmetic is learnt fastest.
PRETRAIN_ANSWERS = Stage(
    "pretrain-answers",
    steps=1200,
    lr=2e-3,
    levels=(1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6),
    keep_multiply=1.0,
    data_seed=TRAIN_SEED + 3,
    completion_only=True,
)
SFT = Stage(
    "sft",
    steps=600,
    lr=1e-3,
    levels=(1, 2),
    keep_multiply=0.15,
    data_seed=TRAIN_SEED + 1,
    completion_only=True,
)
# Then a short style round that leaves the specialist verbose (a post-training side effect): most
# level-2/3 answers, and some level-1 ones, open with VERBOSE_STYLE's restatement. Mixing the
# verbose data into SFT instead dilutes the arithmetic tokens' share of the loss and roughly
# halves level-1/2 accuracy; a separate short round keeps most of it.
VERBOSE = Stage(
    "verbose",
    steps=300,
    lr=1e-3,
    levels=(1, 1, 2, 2, 3),
    keep_multiply=0.15,
    data_seed=TRAIN_SEED + 4,
    completion_only=True,
    verbose=((1, 0.2), (2, 0.7), (3, 0.7)),
)
#: Each model is the previous one trained further through these stages, in this order.
RECIPE: dict[str, tuple[Stage, ...]] = {
    "ancestor": (PRETRAIN, PRETRAIN_SHORT, PRETRAIN_ANSWERS),
    "specialist": (SFT, VERBOSE),
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
    index = 0
    while True:
        level = rng.choice(stage.levels)
        batch: list[str] = []
        while len(batch) < size:
            problem = arith.make_problem(rng, level, index)
            index += 1
            if problem["question"] in exclude:
                continue
            if "Multiply" in problem["question"] and rng.random() >= stage.keep_multiply:
                continue
            prompt = arith.PROMPT_TEMPLATE.format(question=problem["question"])
            batch.append(f"{prompt}{_answer(stage, problem, rng)}\n{EOS}")
        yield batch


def _answer(stage: Stage, problem: dict, rng: random.Random) -> str:
    """The continuation trained on: the plain solution, or (sometimes) its verbose form.

    The coin is only drawn where the stage has a verbose probability, so stages without one
    see exactly the stream they always did.
    """
    verbose = stage.verbose_probability(problem["level"])
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
