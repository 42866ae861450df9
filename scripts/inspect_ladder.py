"""A reasoning-effort ladder of real Inspect AI logs, from a scripted model (``mockllm``).

The README's ladder example runs on these logs::

    .venv/bin/python scripts/inspect_ladder.py --out ladder
    .venv/bin/failtrace profile ladder --ladder -o ladder.parquet
    .venv/bin/failtrace analyze ladder.parquet

Writes one ``.eval`` log per setting of ``reasoning_effort`` (low, medium, high):
``inspect_ai.eval`` of 48 arithmetic problems, 8 epochs each, answered by ``mockllm`` following a
script with four kinds of problem, 12 of each (what a ladder of a real reasoning model often looks
like):

- ``slip``: mostly right at every effort, a wrong digit now and then (a retry fixes it);
- ``long``: the working does not fit at low effort (the model stops at ``max_tokens`` with no
  answer); medium fits some of it, high nearly all of it;
- ``hard``: converges on one wrong answer at low effort, less often with more effort;
- ``out_of_reach``: wrong at every effort, answers scattered.

Token counts grow with the effort (about 3x from low to high). Every draw comes from a generator
seeded by (problem, effort, call), so the logs hold the same rollouts on every run and machine.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import click

EFFORTS: tuple[str, ...] = ("low", "medium", "high")
KINDS: tuple[str, ...] = ("slip", "long", "hard", "out_of_reach")
MODEL = "mockllm/reasoner"
TASK = "arith_ladder"

#: kind -> effort -> chance that a rollout is right.
P_CORRECT: dict[str, dict[str, float]] = {
    "slip": {"low": 0.7, "medium": 0.75, "high": 0.8},
    "long": {"low": 0.1, "medium": 0.5, "high": 0.9},
    "hard": {"low": 0.15, "medium": 0.3, "high": 0.45},
    "out_of_reach": {"low": 0.0, "medium": 0.0, "high": 0.0},
}

#: effort -> typical generated tokens of a finished rollout; the token limit of a low-effort one.
TOKENS: dict[str, int] = {"low": 400, "medium": 800, "high": 1200}
LOW_LIMIT = 1024


def problems(per_kind: int) -> list[tuple[str, str, str, str]]:
    """(id, question, target, kind) of each problem: ``per_kind`` of each kind."""
    rng = random.Random("arith-ladder")
    out = []
    for kind in KINDS:
        for i in range(per_kind):
            a, b, c = rng.randint(12, 99), rng.randint(12, 99), rng.randint(2, 9)
            question = f"Compute ({a} + {b}) * {c}. Problem {kind}-{i}."
            out.append((f"{kind}-{i:02d}", question, str((a + b) * c), kind))
    return out


def reply(kind: str, effort: str, target: str, draw: random.Random) -> tuple[str, int, str]:
    """(text, generated tokens, stop reason) of one rollout."""
    scale = TOKENS[effort] * (0.6 + 0.8 * draw.random())
    if draw.random() < P_CORRECT[kind][effort]:
        return target, int(scale), "stop"
    # Long working runs out of tokens mid-way (no answer): always at low effort, half the time
    # at medium.
    if kind == "long" and effort != "high" and (effort == "low" or draw.random() < 0.5):
        return "", LOW_LIMIT if effort == "low" else 2 * LOW_LIMIT, "max_tokens"
    if kind == "hard" and draw.random() < 0.8:
        return str(int(target) + 10), int(scale), "stop"  # the usual wrong answer
    return str(int(target) + draw.randint(1, 9)), int(scale), "stop"


def scripted_model(questions: dict[str, tuple[str, str, str]], effort: str) -> Any:
    """``mockllm`` answering every call by :func:`reply`, drawn from its own seed."""
    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    calls: Counter[str] = Counter()

    def output(messages: list, tools: list, tool_choice: Any, config: Any) -> Any:
        prompt = messages[-1].text
        question = next(q for q in questions if q in prompt)
        problem_id, target, kind = questions[question]
        draw = random.Random(f"{problem_id}|{effort}|{calls[question]}")
        calls[question] += 1
        text, tokens, stop = reply(kind, effort, target, draw)
        out = ModelOutput.from_content(MODEL, text, stop_reason=stop)
        out.usage = ModelUsage(input_tokens=30, output_tokens=tokens, total_tokens=30 + tokens)
        return out

    return get_model(MODEL, custom_outputs=output)


def write_ladder(out: Path, per_kind: int = 12, epochs: int = 8) -> list[Path]:
    """One log per effort in ``out``; returns their paths."""
    from inspect_ai import Task
    from inspect_ai import eval as inspect_eval
    from inspect_ai.dataset import Sample
    from inspect_ai.scorer import match
    from inspect_ai.solver import generate

    rows = problems(per_kind)
    questions = {question: (pid, target, kind) for pid, question, target, kind in rows}
    dataset = [Sample(input=q, target=t, id=pid) for pid, q, t, _ in rows]
    logs = []
    for effort in EFFORTS:
        task = Task(dataset=dataset, solver=generate(), scorer=match(numeric=True), name=TASK)
        (log,) = inspect_eval(
            task,
            model=scripted_model(questions, effort),
            log_dir=str(out),
            epochs=epochs,
            reasoning_effort=effort,
            display="none",
        )
        logs.append(Path(log.location))
    return logs


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--per-kind", default=12, show_default=True, help="Problems of each kind.")
@click.option("--epochs", default=8, show_default=True, help="Epochs (rollouts per problem).")
def main(out: Path, per_kind: int, epochs: int) -> None:
    """Write the ladder's logs into OUT (one per reasoning effort)."""
    for path in write_ladder(out, per_kind, epochs):
        click.echo(path)


if __name__ == "__main__":
    main()
