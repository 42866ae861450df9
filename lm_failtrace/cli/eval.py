"""``failtrace eval ARGS...``: lm-eval's own CLI with our backends, side-cars and no leaked secrets.

lm-eval 0.4.13 discovers no model plugins, so this command imports our backends (registering
``failtrace-hf`` and ``failtrace-local-completions``) and then runs lm-eval's CLI in-process with
the arguments unchanged, except that:

- secret-looking model arguments (:data:`lm_failtrace.record.secrets.SECRET_NAME`) given to our
  backends are taken out before lm-eval sees them (it would write them to the results JSON) and
  handed to the backend in memory; stock backends keep theirs (they need them), with a warning;
- for our backends, ``--seed`` (its first value) becomes the base seed of the per-repeat seeds
  unless ``seed=`` is among the model arguments;
- after the run, every new samples log of a failtrace task gets its side-car
  ``rollouts_<task>_<timestamp>.jsonl``, and every file written under ``--output_path`` is
  scrubbed of known secret values.

The exit code is lm-eval's (0 on success); bad input is exit 2 with one message.
"""

from __future__ import annotations

import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from lm_failtrace.cli._common import reports_input_errors

_PREFACE = """\
failtrace eval: lm-eval's CLI with the failtrace backends registered.

  failtrace eval --model failtrace-hf --model_args pretrained=PATH \\
      --tasks failtrace_gsm8k --include_path "$(failtrace tasks-path)" \\
      --log_samples --output_path runs/
  failtrace profile runs/

Backends: failtrace-hf (pretrained=PATH, seed, dtype, max_length, ...),
failtrace-local-completions (base_url=URL, model=NAME; API key from OPENAI_API_KEY).
Each samples log of a failtrace task gets a side-car rollouts_<task>_<timestamp>.jsonl.
Secret model arguments (api_key, token, ...) are never written to outputs.
lm-eval's own help follows.
"""


@contextmanager
def _argv(args: list[str]) -> Any:
    saved = sys.argv
    sys.argv = ["lm-eval", *args]
    try:
        yield
    finally:
        sys.argv = saved


def _is_ours(model: str | None) -> bool:
    from lm_failtrace.record.backends import BACKENDS

    return model in BACKENDS


def _private_model_args(
    model_args: dict[str, Any], model: str | None, seed: list[int | None] | None
) -> dict[str, Any]:
    """Model arguments lm-eval may see (and write); secrets of our backends are stashed."""
    from lm_failtrace.record import secrets

    public, secret = secrets.split_secrets(model_args)
    secrets.stash(secret)  # values are also scrubbed from outputs after the run
    if not _is_ours(model):
        if secret:
            print(
                f"failtrace: warning: model {model!r} receives {', '.join(sorted(secret))} "
                "as model arguments; lm-eval prints them (outputs are scrubbed afterwards). "
                "Prefer environment variables.",
                file=sys.stderr,
            )
        return dict(model_args)
    if "seed" not in public and seed and seed[0] is not None:
        public["seed"] = seed[0]
    return public


def _config_model(path: str) -> tuple[dict[str, Any], Any]:
    """A ``--config`` YAML and its model arguments as a dict."""
    from lm_eval.config.evaluate_config import EvaluatorConfig
    from lm_eval.utils import simple_parse_args_string

    config = EvaluatorConfig.load_yaml_config(path)
    model_args = config.get("model_args") or {}
    if isinstance(model_args, str):
        model_args = simple_parse_args_string(model_args)
    return config, model_args


def _written_since(output_path: str | None, start_ns: int) -> list[Path]:
    if not output_path:
        return []
    root = Path(output_path)
    root = root.parent if root.suffix == ".json" else root
    if not root.is_dir():
        return []
    return [p for p in root.rglob("*") if p.is_file() and p.stat().st_mtime_ns >= start_ns]


def run_eval(args: list[str]) -> int:
    """Run lm-eval's CLI on ``args`` (see the module docstring); returns the exit code."""
    import yaml
    from lm_eval._cli.harness import HarnessCLI
    from lm_eval.utils import setup_logging

    from lm_failtrace.record import backends, secrets
    from lm_failtrace.record.sidecar import write_sidecars
    from lm_failtrace.rollouts import samples_files

    backends.register()
    if not args or any(a in ("-h", "--help") for a in args):
        click.echo(_PREFACE)
        if len(args) <= 1:  # show the options of `run`, the command failtrace eval is for
            args = ["run", "--help"]
    setup_logging()
    parser = HarnessCLI()
    with _argv(args):
        try:
            parsed = parser.parse_args()
        except SystemExit as exc:  # --help, or an argparse usage error (exit 2)
            return int(exc.code or 0)
    if getattr(parsed, "command", None) != "run":
        parser.execute(parsed)
        return 0
    config, config_args = _config_model(parsed.config) if parsed.config else ({}, {})
    model = parsed.model or config.get("model") or "hf"
    seed = parsed.seed if parsed.seed is not None else config.get("seed")
    if isinstance(seed, int):
        seed = [seed]
    with tempfile.TemporaryDirectory(prefix="failtrace-eval-") as workdir:
        if parsed.config:  # run from a copy whose model arguments were treated the same way
            config["model_args"] = _private_model_args(config_args, model, seed)
            parsed.config = str(Path(workdir) / Path(parsed.config).name)
            Path(parsed.config).write_text(yaml.safe_dump(config), encoding="utf-8")
        if parsed.model_args or (not parsed.config and _is_ours(model)):
            parsed.model_args = _private_model_args(parsed.model_args or {}, model, seed)
        output_path = parsed.output_path or config.get("output_path")
        before = samples_files(output_path) if output_path else {}
        start_ns = time.time_ns()
        try:
            parser.execute(parsed)
            if output_path:
                after = samples_files(output_path)
                write_sidecars([p for p, mtime in after.items() if before.get(p) != mtime])
        finally:
            if output_path:
                secrets.redact_files(
                    _written_since(output_path, start_ns), secrets.known_secret_values()
                )
    return 0


@click.command(
    "eval",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@reports_input_errors
def eval_command(args: tuple[str, ...]) -> None:
    """Run lm-eval with the failtrace backends; write rollout side-cars (ARGS go to lm-eval)."""
    code = run_eval(list(args))
    if code:
        sys.exit(code)
