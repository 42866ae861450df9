"""``failtrace demo``: the whole pipeline on the bundled tiny pair, offline, in a few minutes.

record (the real lm-eval CLI through ``failtrace eval``) -> repair (every operator on every failure
unit) -> analyze -> MLflow (the specialist registered as an external model in a local sqlite
database, its failure landscape, report and router logged, both aliased ``candidate``).

Every step is the public command or API a user runs on their own checkpoint; the demo only picks
the bundled models, the offline ``failtrace_arith`` task and a local database.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from lm_failtrace.analysis import AnalysisConfig
from lm_failtrace.models import tiny_model_path
from lm_failtrace.record import arith
from lm_failtrace.record.backends.seeds import DEFAULT_BASE_SEED
from lm_failtrace.record.tasks import arith_data_path, tasks_dir

TASK = "failtrace_arith"
MODEL_NAME = "failtrace-demo-specialist"
ALIAS = "candidate"
#: The bundled data's column of planted failure mechanisms, which the demo's analysis compares
#: regimes and routes with (``failtrace analyze --labels mechanism``).
LABELS = "mechanism"
#: Port of the MLflow UI the demo tells the user to open (MLflow's own default).
UI_PORT = 5000


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs.

    Args:
        workdir: where the run, the profile table and the MLflow database go.
        per_mechanism: problems per planted mechanism (of the bundled 25), spread evenly.
        trials: repair trials per unit and operator.
        attempts: attempts per trial.
        seed: base seed of recording and repair.
        cv_repeats: repeats of the 5-fold cross-fitting.
    """

    workdir: Path
    per_mechanism: int = 12
    trials: int = 3
    attempts: int = 3
    seed: int = DEFAULT_BASE_SEED
    cv_repeats: int = 5

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{(self.workdir / 'mlflow.db').resolve()}"


def doc_indices(per_mechanism: int) -> list[int]:
    """Evenly spaced docs of every mechanism (the bundled data is grouped by mechanism)."""
    total = arith.DEFAULT_PER_MECHANISM
    per_mechanism = max(1, min(per_mechanism, total))
    step = total / per_mechanism
    return [
        m * total + int(i * step)
        for m in range(len(arith.MECHANISMS))
        for i in range(per_mechanism)
    ]


def attach_mechanisms(profiles: Path) -> None:
    """Add the bundled data's ``mechanism`` of every unit to the profile table, by problem id.

    The tool itself never reads it unless asked to (``labels=``); the demo does, to show how far
    regimes and routes agree with the causes planted in the bundled specialist.
    """
    from lm_failtrace.profiles import read_profiles, write_profiles

    with arith_data_path().open(encoding="utf-8") as fh:
        mechanism = {row["problem_id"]: row[LABELS] for row in map(json.loads, fh)}
    table = read_profiles(profiles)
    frame = table.frame.assign(**{LABELS: table.frame["problem_id"].map(mechanism)})
    write_profiles(frame, profiles, table.schema)


def record(config: DemoConfig, say: Callable[[str], None]) -> Path:
    """Run the real lm-eval CLI (``failtrace eval``) with the bundled pair; returns the run dir."""
    runs = config.workdir / "runs"
    failtrace = Path(sys.executable).with_name("failtrace")
    cmd = [
        str(failtrace) if failtrace.exists() else "failtrace",
        "eval",
        "--model", "failtrace-hf",
        "--model_args",
        f"pretrained={tiny_model_path('specialist')},ancestor={tiny_model_path('ancestor')},"
        f"seed={config.seed}",
        "--tasks", TASK,
        "--include_path", str(tasks_dir()),
        "--samples", json.dumps({TASK: doc_indices(config.per_mechanism)}),
        "--batch_size", "64",
        "--device", "cpu",
        "--log_samples",
        "--output_path", str(runs),
    ]  # fmt: skip
    say("$ " + " ".join(cmd))
    # lm-eval's own progress bars show (stderr); its INFO log lines and results table do not.
    env = {**os.environ, "LMEVAL_LOG_LEVEL": "WARNING"}
    done = subprocess.run(cmd, cwd=config.workdir, stdout=subprocess.DEVNULL, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"failtrace eval exited with {done.returncode}")
    return runs


def run_demo(config: DemoConfig, say: Callable[[str], None]) -> dict:
    """Run every step; returns the summary that ``failtrace demo`` prints."""
    from lm_failtrace.repair.runner import RepairConfig, repair_run
    from lm_failtrace.tracking import log_failure_landscape, promote

    config = replace(config, workdir=config.workdir.resolve())
    config.workdir.mkdir(parents=True, exist_ok=True)
    n_problems = len(doc_indices(config.per_mechanism))
    say(f"[1/4] recording {n_problems} problems x 16 rollouts with lm-eval")
    runs = record(config, say)
    say("[2/4] repairing every failure unit with every operator")
    profiles = config.workdir / "profiles.csv"
    repair_run(
        runs,
        profiles,
        RepairConfig(trials=config.trials, attempts=config.attempts, seed=config.seed),
        progress=True,
    )
    attach_mechanisms(profiles)
    say("[3/4] analysing and logging to MLflow (local sqlite)")
    # No column lists: the analysis takes what the repaired table holds (its features, all seven
    # operators), as `failtrace log repaired.csv` does.
    analysis = AnalysisConfig(n_repeats=config.cv_repeats, labels=LABELS)
    logged = log_failure_landscape(
        profiles,
        MODEL_NAME,
        checkpoint=tiny_model_path("specialist").resolve().as_uri(),
        tracking_uri=config.tracking_uri,
        config=analysis,
        lm_eval_run=runs,
        progress=say,
    )
    say(f"[4/4] aliasing {MODEL_NAME} and its router {ALIAS!r}")
    promoted = promote(MODEL_NAME, logged.model_version, ALIAS, tracking_uri=config.tracking_uri)
    pooled = (logged.analysis or {}).get("pooled", {})
    return {
        "regimes": pooled.get("regimes", {}).get("counts"),
        "selected_policy": pooled.get("selection", {}).get("selected"),
        "verdicts": (logged.analysis or {}).get("verdicts", []),
        "mechanisms": mechanism_agreement(pooled),
        "reused_earlier_log": logged.reused,
        "workdir": str(config.workdir.resolve()),
        "run_dir": str(runs.resolve()),
        "profiles": str(profiles.resolve()),
        "tracking_uri": config.tracking_uri,
        "model": f"{MODEL_NAME} version {logged.model_version}",
        "router": f"{logged.router_name} version {logged.router_version}",
        "alias": promoted,
        "run_id": logged.run_id,
        **ui_command(config.tracking_uri),
    }


def mechanism_agreement(pooled: dict) -> dict | None:
    """How the pooled regimes and the selected policy's routes agree with the planted mechanisms.

    Adjusted Rand index of each partition against the mechanisms, and the cross-validated
    accuracy of predicting the mechanism from the features next to the majority-class rate.
    """
    labels = pooled.get("labels")
    if not labels or "regime" not in labels:
        return None
    selected = labels.get("selected_policy")
    routes = labels["routes"].get(selected) or labels["routes"].get("paper_rule")
    recover = labels["recoverability"]
    return {
        "regime_ari": labels["regime"]["ari"],
        "routes_policy": selected if selected in labels["routes"] else "paper_rule",
        "routes_ari": routes["ari"],
        "routes_contingency": routes["contingency"],
        "accuracy_mean": recover.get("accuracy_mean"),
        "accuracy_std": recover.get("accuracy_std"),
        "majority_rate": recover.get("majority_rate"),
    }


def ui_command(tracking_uri: str, port: int = UI_PORT) -> dict[str, str]:
    """The command that opens the MLflow UI on the demo's database, and the URL it serves.

    The ``mlflow`` of this environment, by absolute path unless it is the one on PATH: after
    ``pip install`` into a virtualenv that is not activated, a bare ``mlflow`` is not found or
    is another installation.
    """
    ours = Path(sys.executable).with_name("mlflow")
    on_path = shutil.which("mlflow")
    mlflow = "mlflow" if on_path and Path(on_path).resolve() == ours.resolve() else str(ours)
    return {
        "ui_command": f"{mlflow} ui --backend-store-uri {tracking_uri} --port {port}",
        "ui_url": f"http://127.0.0.1:{port}",
    }
