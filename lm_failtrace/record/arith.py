"""The offline ``failtrace_arith`` data: one-digit arithmetic chains with planted failures.

Format (the bundled tiny models are trained on exactly this; keep it stable):

- ``question``: ``"Start with 6. Subtract 1. Subtract 1. Multiply by 2."``
- ``solution``: one step per operation, then the answer marker:
  ``"6 - 1 = 5. 5 - 1 = 4. 4 * 2 = 8. #### 8"``
- prompt seen by the model: ``"Question: {question}\\nAnswer:"``; the model continues with
  ``" {solution}"`` and stops at a newline. The answer is the integer after ``####``.

Training chains keep every value a single digit (0..9): every step is a lookup in a small table,
which a 0.9M-parameter character-level model learns in minutes on a CPU. ``level`` is the number
of operations.

The bundled evaluation set is the demo's problem set: problems built so that the bundled
specialist fails them for a known reason, recorded in the ``mechanism`` column (the tool never
reads it unless asked to, e.g. ``failtrace analyze --labels mechanism``):

- ``slip``: two or three additions/subtractions. The specialist has the skill but slips now and
  then at T = 0.6 (its post-training data had off-by-one results); a plain retry fixes it.
- ``verbosity``: five or six additions/subtractions. The specialist restates the question before
  solving chains this long, which runs past the 128-token budget; a larger budget fixes it.
- ``forgotten_skill``: two additions/subtractions, then a multiplication. Post-training erased the
  specialist's multiplication table (the ancestor still has it); steering toward the ancestor at
  that step fixes it.
- ``beyond_reach``: two or three steps whose last result is negative, which neither model ever
  saw; nothing fixes it.

Generation is a pure function of the seed, so the bundled JSONL can be regenerated and checked
byte for byte.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

PROMPT_TEMPLATE = "Question: {question}\nAnswer:"
ANSWER_MARKER = "####"
DEFAULT_SEED = 20260605
DEFAULT_PER_MECHANISM = 25
LEVELS = range(1, 7)

ADD, SUBTRACT, MULTIPLY = "Add", "Subtract", "Multiply by"
OPERATIONS = (ADD, SUBTRACT, MULTIPLY)
_SYMBOL = {ADD: "+", SUBTRACT: "-", MULTIPLY: "*"}


def _operands(value: int, operation: str) -> list[int]:
    """The operands that keep ``value`` a single digit under ``operation``."""
    if operation == ADD:
        return list(range(1, 10 - value))
    if operation == SUBTRACT:
        return list(range(1, value + 1))
    return [d for d in range(2, 10) if value * d <= 9]


def apply(value: int, operation: str, operand: int) -> int:
    """One step of a chain."""
    if operation == ADD:
        return value + operand
    if operation == SUBTRACT:
        return value - operand
    return value * operand


def render(start: int, steps: Sequence[tuple[str, int]], results: Sequence[int]) -> dict:
    """Question and solution text of a chain, with ``results`` written as the step results.

    ``results`` are normally the true ones; training data for the specialist writes altered
    ones (its slips and its erased skill), which is why they are an argument.
    """
    question = " ".join([f"Start with {start}.", *(f"{op} {d}." for op, d in steps)])
    lines, value = [], start
    for (op, d), result in zip(steps, results, strict=True):
        lines.append(f"{value} {_SYMBOL[op]} {d} = {result}.")
        value = result
    return {
        "question": question,
        "solution": " ".join(lines) + f" {ANSWER_MARKER} {value}",
        "answer": str(value),
    }


def true_results(start: int, steps: Sequence[tuple[str, int]]) -> list[int]:
    """The correct result of every step."""
    results, value = [], start
    for op, d in steps:
        value = apply(value, op, d)
        results.append(value)
    return results


def draw_chain(
    rng: random.Random, allowed: Sequence[Sequence[str]]
) -> tuple[int, list[tuple[str, int]]]:
    """A chain of ``len(allowed)`` steps, every value a single digit.

    Step i does one of ``allowed[i]``, drawn among those that have an operand at the current
    value; the chain is redrawn from a new start value when none has.
    """
    while True:
        value = rng.randint(0, 9)
        start, steps = value, []
        for operations in allowed:
            feasible = [op for op in operations if _operands(value, op)]
            if not feasible:
                break
            op = rng.choice(feasible)
            d = rng.choice(_operands(value, op))
            steps.append((op, d))
            value = apply(value, op, d)
        if len(steps) == len(allowed):
            return start, steps


def make_problem(rng: random.Random, level: int, index: int) -> dict:
    """A training-style problem: ``level`` random operations, every value a single digit."""
    start, steps = draw_chain(rng, [OPERATIONS] * level)
    return {
        "problem_id": f"arith-L{level}-{index:03d}",
        "level": level,
        **render(start, steps, true_results(start, steps)),
    }


def _slip(rng: random.Random) -> tuple[int, list[tuple[str, int]]]:
    return draw_chain(rng, [(ADD, SUBTRACT)] * rng.choice((2, 3)))


def _verbosity(rng: random.Random) -> tuple[int, list[tuple[str, int]]]:
    return draw_chain(rng, [(ADD, SUBTRACT)] * rng.choice((5, 6)))


def _forgotten_skill(rng: random.Random) -> tuple[int, list[tuple[str, int]]]:
    return draw_chain(rng, [(ADD, SUBTRACT), (ADD, SUBTRACT), (MULTIPLY,)])


def _beyond_reach(rng: random.Random) -> tuple[int, list[tuple[str, int]]]:
    """Single-digit steps, then a subtraction that goes below zero."""
    while True:
        start, steps = draw_chain(rng, [(ADD, SUBTRACT)] * rng.choice((1, 2)))
        value = true_results(start, steps)[-1]
        if value < 9:
            return start, [*steps, (SUBTRACT, rng.randint(value + 1, 9))]


#: The planted mechanisms, in the bundled file's order, and how each one's problems are drawn.
MECHANISMS: dict[str, Callable[[random.Random], tuple[int, list[tuple[str, int]]]]] = {
    "slip": _slip,
    "verbosity": _verbosity,
    "forgotten_skill": _forgotten_skill,
    "beyond_reach": _beyond_reach,
}


def generate(
    seed: int = DEFAULT_SEED, per_mechanism: int = DEFAULT_PER_MECHANISM
) -> Iterator[dict]:
    """The evaluation set: ``per_mechanism`` distinct problems of every mechanism, in turn."""
    rng = random.Random(seed)
    seen: set[str] = set()
    for mechanism, draw in MECHANISMS.items():
        for index in range(per_mechanism):
            while True:
                start, steps = draw(rng)
                problem = render(start, steps, true_results(start, steps))
                if problem["question"] not in seen:
                    break
            seen.add(problem["question"])
            yield {
                "problem_id": f"arith-{mechanism}-{index:03d}",
                "mechanism": mechanism,
                "level": len(steps),
                **problem,
            }


def write_jsonl(
    path: str | Path, seed: int = DEFAULT_SEED, per_mechanism: int = DEFAULT_PER_MECHANISM
) -> Path:
    """Write the generated problems as JSONL (one problem per line)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for problem in generate(seed, per_mechanism):
            fh.write(json.dumps(problem, sort_keys=True) + "\n")
    return path
