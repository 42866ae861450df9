"""Real Inspect AI runs of a scripted model (``mockllm``), written as ``.eval`` or ``.json`` logs.

A plain module (not conftest) so test files import it by a name unique in the whole suite. The
scripted model answers each prompt with its list of outputs, one per call, so every rollout's
answer, token count and stop reason is known here without reading the log; the grader model of
the second scorer spends :data:`GRADER_TOKENS` tokens per sample, which must never be counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EPOCHS = 4
TOKEN_LIMIT = 200  # per sample; the "long" prompt's usage exceeds it
GRADER_TOKENS = 1000
MODEL = "mockllm/model"
GRADER = "mockllm/grader"
TASK = "scripted_arith"


@dataclass(frozen=True)
class Reply:
    """One scripted call: the text, output tokens and stop reason (``None`` = the call raises)."""

    text: str | None
    tokens: int = 10
    stop: str = "stop"


ERROR = Reply(None)

#: sample id -> (input, target, one reply per call, in call order).
SCRIPT: dict[str, tuple[str, str, list[Reply]]] = {
    "q1": ("What is 2 + 2?", "4", [Reply("4", 10), Reply("4", 12), Reply("5", 30), Reply("4", 11)]),
    "q2": ("What is 3 + 4?", "7", [Reply("6", 20), Reply("8", 22), Reply("6", 24), Reply("6", 26)]),
    "q3": ("What is 4 + 5?", "9", [Reply("9", 40), Reply("", 64, "max_tokens"), Reply("9", 42),
                                   Reply("", 64, "max_tokens")]),
    "q4": ("What is 0 + 1?", "1", [Reply("1", 5), ERROR, Reply("2", 7), Reply("1", 6)]),
    "long": ("What is 1 + 2? Think long.", "3", [Reply("3", 300)] * EPOCHS),
    "boom": ("What is 5 - 5?", "0", [ERROR] * EPOCHS),
}  # fmt: skip


def scripted_model(script: dict[str, tuple[str, str, list[Reply]]], name: str = MODEL) -> Any:
    """``mockllm`` answering each prompt with the next reply of its script."""
    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    replies = {question: list(calls) for question, _, calls in script.values()}
    calls: Counter[str] = Counter()

    def output(messages: list, tools: list, tool_choice: Any, config: Any) -> Any:
        prompt = messages[-1].text
        question = next(q for q in replies if q in prompt)
        reply = replies[question][calls[question]]
        calls[question] += 1
        if reply.text is None:
            raise RuntimeError(f"scripted failure for {question!r}")
        out = ModelOutput.from_content(name, reply.text, stop_reason=reply.stop)
        out.usage = ModelUsage(input_tokens=5, output_tokens=reply.tokens,
                               total_tokens=5 + reply.tokens)  # fmt: skip
        return out

    return get_model(name, custom_outputs=output)


def grader_model() -> Any:
    """A grader that passes every answer, spending GRADER_TOKENS output tokens each time."""
    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    def output(messages: list, tools: list, tool_choice: Any, config: Any) -> Any:
        out = ModelOutput.from_content(GRADER, "GRADE: C")
        out.usage = ModelUsage(input_tokens=50, output_tokens=GRADER_TOKENS,
                               total_tokens=50 + GRADER_TOKENS)  # fmt: skip
        return out

    return get_model(GRADER, custom_outputs=output)


def partial_scorer() -> Any:
    """A scorer that gives partial credit (``P``) to a wrong answer: not correct/incorrect."""
    from inspect_ai.scorer import Score, Target, accuracy, scorer

    @scorer(metrics=[accuracy()])
    def partial() -> Any:
        async def score(state: Any, target: Target) -> Score:
            answer = state.output.completion
            return Score(value="C" if answer == target.text else "P", answer=answer)

        return score

    return partial()


def run_inspect(
    log_dir: Path,
    script: dict[str, tuple[str, str, list[Reply]]] = SCRIPT,
    *,
    task: str = TASK,
    epochs: int = EPOCHS,
    log_format: str = "eval",
    graded: bool = True,
    scored: bool = True,
    partial: bool = False,
    **generate: Any,
) -> Path:
    """One real ``inspect_ai.eval`` of the scripted model; returns the log's path.

    Args:
        graded: add a second scorer, ``model_graded_qa`` with :func:`grader_model`.
        scored: score at all (False: a log without scores).
        partial: score with :func:`partial_scorer` instead of ``match``.
        generate: generation settings of the run (``reasoning_effort="high"``).
    """
    from inspect_ai import Task
    from inspect_ai import eval as inspect_eval
    from inspect_ai.dataset import Sample
    from inspect_ai.scorer import match, model_graded_qa
    from inspect_ai.solver import generate as generate_solver

    samples = [Sample(input=q, target=t, id=i) for i, (q, t, _) in script.items()]
    scorers = [partial_scorer() if partial else match(numeric=True)]
    if graded:
        scorers.append(model_graded_qa(model=grader_model()))
    spec = Task(dataset=samples, solver=generate_solver(), scorer=scorers, name=task)
    logs = inspect_eval(
        spec,
        model=scripted_model(script),
        log_dir=str(log_dir),
        log_format=log_format,
        epochs=epochs,
        token_limit=TOKEN_LIMIT,
        fail_on_error=False,
        score=scored,
        display="none",
        max_samples=1,
        **generate,
    )
    assert len(logs) == 1 and logs[0].location, logs
    return Path(logs[0].location)
