"""The offline ``failtrace_arith`` data: graded integer-arithmetic chains with worked solutions.

Format (the bundled tiny models are trained on exactly this; keep it stable):

- ``question``: ``"Start with 37. Add 45. Subtract 12. Multiply by 3."``
- ``solution``: one step per operation, then the answer marker:
  ``"37 + 45 = 82. 82 - 12 = 70. 70 * 3 = 210. #### 210"``
- prompt seen by the model: ``"Question: {question}\\nAnswer:"``; the model continues with
  ``" {solution}"`` and stops at a newline. The answer is the integer after ``####``.

Difficulty ``level`` 1..6 is the number of operations; higher levels also use larger operands, so
harder problems need longer solutions (which a small ``max_gen_toks`` truncates). Generation is a
pure function of the seed, so the bundled JSONL can be regenerated and checked byte for byte.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

PROMPT_TEMPLATE = "Question: {question}\nAnswer:"
ANSWER_MARKER = "####"
DEFAULT_SEED = 20260605
DEFAULT_PER_LEVEL = 50
LEVELS = range(1, 7)

_OPS = (("Add", "+"), ("Subtract", "-"), ("Multiply by", "*"))


def _apply(value: int, symbol: str, operand: int) -> int:
    if symbol == "+":
        return value + operand
    if symbol == "-":
        return value - operand
    return value * operand


def make_problem(rng: random.Random, level: int, index: int) -> dict:
    """One problem of ``level`` operations; operands grow with the level."""
    hi = 10 * level + 9
    value = rng.randint(2, hi)
    sentences = [f"Start with {value}."]
    steps = []
    for _ in range(level):
        word, symbol = rng.choice(_OPS)
        operand = rng.randint(2, 9) if symbol == "*" else rng.randint(2, hi)
        result = _apply(value, symbol, operand)
        sentences.append(f"{word} {operand}.")
        steps.append(f"{value} {symbol} {operand} = {result}.")
        value = result
    return {
        "problem_id": f"arith-L{level}-{index:03d}",
        "level": level,
        "question": " ".join(sentences),
        "solution": " ".join(steps) + f" {ANSWER_MARKER} {value}",
        "answer": str(value),
    }


def generate(seed: int = DEFAULT_SEED, per_level: int = DEFAULT_PER_LEVEL) -> Iterator[dict]:
    """All problems, level by level, deterministically from ``seed``."""
    rng = random.Random(seed)
    for level in LEVELS:
        for index in range(per_level):
            yield make_problem(rng, level, index)


def write_jsonl(
    path: str | Path, seed: int = DEFAULT_SEED, per_level: int = DEFAULT_PER_LEVEL
) -> Path:
    """Write the generated problems as JSONL (one problem per line)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for problem in generate(seed, per_level):
            fh.write(json.dumps(problem, sort_keys=True) + "\n")
    return path
