"""``failtrace repair``: measure every operator's rescue rate on the failure units of a run.

For each failure unit of each task in an lm-eval output directory, every operator gets
``trials`` trials of ``attempts`` attempts (a trial succeeds when any attempt is correct, judged
by the task's own scorer); the unit's rescue rate for an operator is the fraction of successful
trials, and its ``<operator>_tokens`` the mean tokens one trial generated (all its attempts: the
compute a best-of-A trial spends). The output is the profile table of ``failtrace profile`` with
those columns added, ready for ``failtrace analyze``.

Work is checkpointed unit by unit in ``<output>.partial.jsonl`` (its first line records the
settings): an interrupted repair resumes where it stopped, and a checkpoint written with other
settings is refused rather than mixed in.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from lm_failtrace.errors import InputError
from lm_failtrace.outputs import check_outputs
from lm_failtrace.profiles import (
    ProfileSchema,
    ProfileTable,
    add_rescue,
    check_table_path,
    write_profiles,
)
from lm_failtrace.profiles.build import build_profiles
from lm_failtrace.profiles.rescue import check_names
from lm_failtrace.record.backends.seeds import DEFAULT_BASE_SEED
from lm_failtrace.repair.generators import AttemptGenerator, attempt_generator
from lm_failtrace.repair.operators import OPERATORS, UnitContext
from lm_failtrace.rollouts import SAMPLES_KEY, Run, find_runs, recorded_model_args

#: The operators run by default: the paper's five and our two black-box ones.
DEFAULT_OPERATORS: tuple[str, ...] = tuple(OPERATORS)


@dataclass(frozen=True)
class RepairConfig:
    """Settings of one repair run (all recorded in the checkpoint).

    Args:
        operators: operator names (see :data:`lm_failtrace.repair.operators.OPERATORS`).
        attempts: attempts per trial (A; docs/method.md default 3).
        trials: trials per unit and operator (R); rescue rates are multiples of 1/R.
        seed: base seed of the attempts' seeds.
        quantile: detector threshold quantile of ``j`` over the unit's recorded failed rollouts.
    """

    operators: tuple[str, ...] = DEFAULT_OPERATORS
    attempts: int = 3
    trials: int = 4
    seed: int = DEFAULT_BASE_SEED
    quantile: float = 0.99

    def check(self) -> None:
        unknown = [op for op in self.operators if op not in OPERATORS]
        if unknown:
            raise InputError(
                f"unknown operator(s) {', '.join(unknown)}; known: {', '.join(OPERATORS)}",
                parameter="operators",
            )
        if "retry" not in self.operators:
            raise InputError(
                "retry is required: regimes compare every operator to it", parameter="operators"
            )
        if self.attempts < 1 or self.trials < 1:
            raise InputError("attempts and trials must be >= 1", parameter="trials")


@dataclass
class UnitDoc:
    """What repair needs of one recorded failure unit (read from one samples-log line)."""

    task: str
    problem_id: str
    doc: dict[str, Any]
    target: str
    prompt: str
    gen_kwargs: dict[str, Any]
    failed_texts: list[str] = field(default_factory=list)


def _model_config(run: Run) -> tuple[str, dict[str, Any]]:
    """The backend name and model arguments the run was recorded with (lm-eval's results)."""
    if not run.results.is_file():
        raise InputError("repair needs lm-eval's results JSON of the run", path=run.results)
    try:
        config = json.loads(run.results.read_text(encoding="utf-8"))["config"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"no run configuration in the results JSON: {exc}", path=run.results
        ) from None
    args = recorded_model_args(config.get("model_args"))
    return str(config.get("model")), {k: v for k, v in args.items() if v != "<redacted>"}


def _unit_docs(run: Run, units: set[str]) -> Iterator[UnitDoc]:
    """Stream the samples log, yielding the failure units' prompts, docs and failed texts."""
    path = run.files.get("samples")
    if path is None:
        raise InputError(f"repair needs the samples log of task {run.task!r}", path=run.folder)
    seen_filter: str | None = None
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                sample = json.loads(line.decode("utf-8"))
                seen_filter = seen_filter or sample["filter"]
                if sample["filter"] != seen_filter:
                    continue  # lm-eval logs each doc once per filter; the first one records
                records = sample[SAMPLES_KEY]
                problem = str(records[0]["problem_id"])
                if problem not in units:
                    continue
                (args,) = sample["arguments"].values()
                (responses,) = sample["resps"]
                failed = [responses[int(r["repeat"])] for r in records if not r["correct"]]
                yield UnitDoc(
                    run.task,
                    problem,
                    sample["doc"],
                    str(sample["target"]),
                    str(args["arg_0"]),
                    dict(args["arg_1"]),
                    failed,
                )
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise InputError(
                    f"not a failtrace samples line ({type(exc).__name__}: {exc})",
                    path=path,
                    line=number,
                ) from None


def repair_unit(
    unit: UnitDoc, generator: AttemptGenerator, scorer: Any, config: RepairConfig
) -> dict[str, float]:
    """Rescue rate and tokens per trial of every operator on one unit."""
    until = unit.gen_kwargs.get("until") or []
    until = [until] if isinstance(until, str) else list(until)
    threshold = None
    if any(OPERATORS[op].needs_ancestor for op in config.operators):
        scores = generator.junction_scores(unit.prompt, unit.failed_texts)
        threshold = float(np.quantile(scores, config.quantile)) if scores.size else None
    ctx = UnitContext(
        unit.problem_id,
        threshold,
        temperature=float(unit.gen_kwargs.get("temperature", 0.6)),
        max_new_tokens=int(unit.gen_kwargs.get("max_gen_toks", 256)),
        base_seed=config.seed,
    )
    plans, owners = [], []
    for op in config.operators:
        for trial in range(config.trials):
            for plan in OPERATORS[op].plans(ctx, trial, config.attempts):
                plans.append(plan)
                owners.append((op, trial))
    attempts = generator.generate(unit.prompt, plans, until)
    correct = scorer.correct(unit.doc, unit.target, [a.text for a in attempts])
    out: dict[str, float] = {}
    for op in config.operators:
        wins = np.zeros(config.trials, dtype=bool)
        tokens = np.zeros(config.trials)
        for (owner, trial), attempt, ok in zip(owners, attempts, correct, strict=True):
            if owner == op:
                wins[trial] |= ok
                tokens[trial] += (
                    np.nan if attempt.generated_tokens is None else attempt.generated_tokens
                )
        out[op] = float(wins.mean())
        out[f"{op}_tokens"] = float(tokens.mean())
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Checkpoint:
    """Append-only per-unit results; the first line holds the settings they were made with.

    Nothing is written before the first result (a run that fails early leaves no file). Each line
    is appended whole (one write, flushed and synced) and ends with a newline, so a last line
    without one is an append that a kill interrupted: it is dropped and its unit redone. A
    complete line that does not parse means the file was damaged or edited; it is an error
    naming the line (guessing would mix wrong rates into the table), and ``restart`` discards the
    checkpoint.

    Args:
        path: the checkpoint file (``<output>.partial.jsonl``).
        header: the settings and input of this repair (the first line must equal it).
        operators: the operators whose rates (and ``<operator>_tokens``) every result holds.
    """

    def __init__(self, path: Path, header: Mapping[str, Any], operators: Sequence[str]) -> None:
        self.path = path
        self.header = json.loads(json.dumps(header))
        self.operators = tuple(operators)
        self.done: dict[tuple[str, str], dict[str, float]] = {}
        self._has_header = False
        if path.is_file():
            self._load()

    def _load(self) -> None:
        complete = 0  # bytes of complete lines
        with self.path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                if not raw.endswith(b"\n"):
                    break  # an interrupted append: dropped below, its unit redone
                complete += len(raw)
                if raw.strip():
                    self._take(number, raw)
        if complete < self.path.stat().st_size:
            os.truncate(self.path, complete)

    def _damaged(self, number: int, what: str) -> InputError:
        return InputError(
            f"damaged checkpoint line ({what}): pass `restart` to discard the checkpoint and "
            "start over",
            path=self.path,
            line=number,
        )

    def _take(self, number: int, raw: bytes) -> None:
        """Read one complete line: the settings first, then one unit's result per line."""
        try:
            doc = json.loads(raw.decode("utf-8"))
        except ValueError as exc:  # UnicodeDecodeError included
            raise self._damaged(number, f"not a JSON line: {exc}") from None
        if not self._has_header:
            if doc != self.header:
                raise InputError(
                    "a checkpoint from a repair with other settings or input is here: rerun "
                    "with the same settings to resume, or pass `restart` to discard it",
                    path=self.path,
                )
            self._has_header = True
            return
        if not (
            isinstance(doc, dict)
            and isinstance(doc.get("task"), str)
            and isinstance(doc.get("problem_id"), str)
            and isinstance(doc.get("result"), dict)
        ):
            raise self._damaged(number, "expected an object with task, problem_id and result")
        problem = self._check_result(doc["result"])
        if problem:
            raise self._damaged(number, problem)
        self.done[(doc["task"], doc["problem_id"])] = doc["result"]

    def _check_result(self, result: dict[str, Any]) -> str | None:
        """What is wrong with a unit's result, or None: each rate in [0, 1], tokens >= 0."""
        for op in self.operators:
            rate, tokens = result.get(op), result.get(f"{op}_tokens")
            if not (_is_number(rate) and 0 <= rate <= 1):
                return f"{op} is {rate!r}"
            if not (_is_number(tokens) and (math.isnan(tokens) or tokens >= 0)):
                return f"{op}_tokens is {tokens!r}"
        return None

    def add(self, task: str, problem_id: str, result: dict[str, float]) -> None:
        """Append one unit's result (with the settings line first, when the file has none)."""
        text = json.dumps({"task": task, "problem_id": problem_id, "result": result}) + "\n"
        if not self._has_header:
            text = json.dumps(self.header) + "\n" + text
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        self._has_header = True
        self.done[(task, problem_id)] = result


def repair_run(
    run_dir: str | Path,
    output: str | Path,
    config: RepairConfig | None = None,
    *,
    model_args: Mapping[str, Any] | None = None,
    include_path: Sequence[str | Path] = (),
    progress: bool = False,
    restart: bool = False,
    rescue: Mapping[str, str | Path] | None = None,
    match_task: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Repair every failure unit of the newest run of each task under ``run_dir``.

    Args:
        run_dir: an lm-eval output directory recorded with a failtrace backend.
        output: the profile table to write (CSV or Parquet), with rescue columns.
        config: operators, attempts, trials, seed.
        model_args: override the recorded model arguments (e.g. a moved checkpoint path).
        include_path: folders of task YAMLs besides the bundled ones.
        progress: draw one progress bar on stderr (units done, rate, time remaining); units
            resumed from a checkpoint count as done.
        restart: discard the checkpoint ``<output>.partial.jsonl`` instead of resuming from it.
        rescue: rescue columns from other runs of the same problems, added to the repaired table
            (NAME -> OTHER, as in :func:`~lm_failtrace.profiles.add_rescue`; ``match_task`` as
            there), so measured and run-derived operators meet in one table.

    Returns:
        The written table.

    Raises:
        InputError: bad settings; an output that is, or lies inside, the run folder (checked
            before anything is read); a damaged checkpoint or one made with other settings;
            a run that cannot be repaired (named by file and line).
    """
    from lm_failtrace.record.tasks import TaskScorer

    config = config or RepairConfig()
    config.check()
    output = Path(output)
    partial = output.with_name(output.name + ".partial.jsonl")
    check_outputs([("output", output), ("output", partial)], [run_dir, *(rescue or {}).values()])
    check_table_path(output)
    check_names(rescue or {}, [*config.operators, *(f"{op}_tokens" for op in config.operators)])
    built = build_profiles(run_dir)
    table = built.frame
    if table["model"].nunique() > 1:
        raise InputError(
            "repair one model at a time: this directory holds runs of "
            + ", ".join(sorted(table["model"].unique())),
            path=run_dir,
        )
    runs = find_runs(run_dir)
    if restart:
        partial.unlink(missing_ok=True)
    checkpoint = Checkpoint(
        partial,
        {"config": asdict(config), "runs": sorted(str(r.files.get("samples")) for r in runs)},
        config.operators,
    )
    results: dict[tuple[str, str], dict[str, float]] = dict(checkpoint.done)
    bar = tqdm(
        total=len(table), initial=len(results), desc="repair", unit="unit", disable=not progress
    )
    for run in runs:
        backend, args = _model_config(run)
        args = {**args, **(model_args or {})}
        units = set(table.loc[table["task"] == run.task, "problem_id"].astype(str))
        todo = {u for u in units if (run.task, u) not in results}
        if not todo:
            continue
        generator = attempt_generator(backend, args)
        steering = [op for op in config.operators if OPERATORS[op].needs_ancestor]
        if steering and not generator.steers:
            raise InputError(
                f"operators {', '.join(steering)} steer toward the ancestor: record with "
                "failtrace-hf and ancestor=PATH (or failtrace-local-completions and "
                "ancestor_url=URL), pass that through `model_args`, or choose black-box "
                "operators (retry, budget, temp_shift)",
                parameter="operators",
            )
        scorer = TaskScorer(run.task, include_path)
        for unit in _unit_docs(run, todo):
            result = repair_unit(unit, generator, scorer, config)
            checkpoint.add(run.task, unit.problem_id, result)
            results[(run.task, unit.problem_id)] = result
            bar.update()
    bar.close()
    columns = [c for op in config.operators for c in (op, f"{op}_tokens")]
    keys = list(zip(table["task"].astype(str), table["problem_id"].astype(str), strict=True))
    missing = [k for k in keys if k not in results]
    if missing:
        raise InputError(
            f"no samples-log line for {len(missing)} failure unit(s), e.g. {missing[0]}"
        )
    extra = pd.DataFrame([results[k] for k in keys], columns=columns)
    out = pd.concat([table.reset_index(drop=True), extra], axis=1)
    # The table declares what was measured: the run's features and exactly these operators.
    repaired = ProfileTable(out, ProfileSchema(built.schema.features, config.operators))
    if rescue:
        repaired = add_rescue(repaired, rescue, match_task=match_task)
    write_profiles(repaired.frame, output, repaired.schema)
    partial.unlink(missing_ok=True)
    return repaired.frame
