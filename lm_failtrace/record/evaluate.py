"""Recording as a library call: lm-eval's CLI with our backends, side-cars and no leaked secrets.

lm-eval 0.4.13 discovers no model plugins, so :func:`run_eval` imports our backends (registering
``failtrace-hf`` and ``failtrace-local-completions``) and then runs lm-eval's CLI in-process with
the arguments unchanged, except that:

- secret-looking model arguments (:data:`lm_failtrace.record.secrets.SECRET_NAME`) and the
  credentials of URLs (``base_url=http://user:PASSWORD@host/...``) given to our backends are
  taken out before lm-eval sees them (it would print them and write them to the results JSON) and
  handed to the backend in memory; a model argument our backend does not know is refused by name
  before lm-eval sees (and prints) its value; stock backends keep their arguments (they need
  them), with a warning;
- for our backends, ``--seed`` (its first value) becomes the base seed of the per-repeat seeds
  unless ``seed=`` is among the model arguments;
- after the run, every new samples log of a failtrace task gets its side-car
  ``rollouts_<task>_<timestamp>.jsonl``, and every file written under ``--output_path`` is
  scrubbed of known secret values and URL credentials; what lm-eval prints while it runs is
  scrubbed the same way (:func:`lm_failtrace.record.secrets.redacted_output`).

``failtrace eval`` is this function behind a command line. lm-eval and yaml are imported when it
runs, so importing :mod:`lm_failtrace.record` stays cheap.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_failtrace.errors import InputError
from lm_failtrace.record import backends, secrets
from lm_failtrace.record.backends.generation import reject_unknown_args
from lm_failtrace.record.sidecar import write_sidecars
from lm_failtrace.rollouts import output_folder, samples_files


@dataclass(frozen=True)
class EvalResult:
    """What one :func:`run_eval` call wrote.

    Attributes:
        output_path: where lm-eval wrote (``--output_path``, else the ``--config`` file's);
            ``None`` when it was not given or nothing ran (help, ``ls``, ``validate``).
        sidecars: the side-cars written, one per new samples log of a failtrace task.
    """

    output_path: Path | None
    sidecars: tuple[Path, ...] = ()


def run_eval(args: Sequence[str]) -> EvalResult:
    """Run lm-eval's CLI in-process on ``args`` with the failtrace backends (module docstring).

    Args:
        args: lm-eval's command-line arguments, as ``failtrace eval`` takes them (``run`` may be
            left out, as with lm-eval; ``ls ...`` and ``validate ...`` run those commands).
            Side-cars are written only with ``--log_samples --output_path DIR``.

    Returns:
        The output path and the side-cars written.

    Raises:
        InputError: lm-eval rejected the arguments (argparse's message), the ``--config`` file
            is missing or malformed, or a backend rejected its model arguments or settings.
        SystemExit: where an lm-eval command exits by itself (``validate`` with unknown tasks).

    Example::

        from lm_failtrace.record import run_eval
        from lm_failtrace.record.tasks import tasks_dir

        result = run_eval(["--model", "failtrace-hf", "--model_args", "pretrained=ckpt/",
                           "--tasks", "failtrace_arith", "--include_path", str(tasks_dir()),
                           "--log_samples", "--output_path", "runs/"])
        result.sidecars  # (Path('runs/<model>/rollouts_failtrace_arith_<timestamp>.jsonl'),)
    """
    from lm_eval._cli.harness import HarnessCLI
    from lm_eval.utils import setup_logging

    backends.register()
    setup_logging()
    parser = HarnessCLI()
    parsed = _parse(parser, args)
    if parsed is None:  # it printed help
        return EvalResult(None)
    if getattr(parsed, "command", None) != "run":  # lm-eval's `ls` or `validate`
        parser.execute(parsed)
        return EvalResult(None)
    with secrets.stash_scope(), tempfile.TemporaryDirectory(prefix="failtrace-eval-") as workdir:
        try:
            output_path = _hide_secrets(parsed, Path(workdir))
            return _execute(parser, parsed, output_path)
        except InputError as exc:  # it may quote an argument; the stash still knows the secrets
            raise secrets.redact_error(exc) from None


@contextlib.contextmanager
def _argv(args: Sequence[str]) -> Iterator[None]:
    """lm-eval's parser reads (and edits) ``sys.argv``; give it ours, then restore the caller's."""
    saved = sys.argv
    sys.argv = ["lm-eval", *args]
    try:
        yield
    finally:
        sys.argv = saved


def _parse(parser: Any, args: Sequence[str]) -> argparse.Namespace | None:
    """lm-eval's parse of ``args``; ``None`` when it printed help instead.

    argparse reports a usage error by printing it and exiting (code 2); a library call raises
    :class:`InputError` with argparse's message instead (``lm-eval run: argument ...``), and the
    CLI exits 2 all the same.
    """
    errors = io.StringIO()
    with _argv(args), contextlib.redirect_stderr(errors):
        try:
            return parser.parse_args()
        except SystemExit as exc:
            if not exc.code:
                return None
    lines = errors.getvalue().strip().splitlines()
    message = lines[-1].replace(": error: ", ": ", 1) if lines else "lm-eval: bad arguments"
    raise InputError(secrets.redact_text(message))


def _is_ours(model: str | None) -> bool:
    return model in backends.BACKENDS


def _private_model_args(
    model_args: dict[str, Any],
    model: str | None,
    seed: list[int | None] | None,
    output_path: str | None = None,
) -> dict[str, Any]:
    """Model arguments lm-eval may see (and write); secrets of our backends are stashed.

    Secret values and URL credentials are stashed for every backend: our backends read them
    from the stash, and everything printed and written is scrubbed of them. A server recording
    with an ``--output_path`` journals what it receives there unless ``journal=`` says otherwise
    (:mod:`lm_failtrace.record.backends.journal`).
    """
    public, secret = secrets.split_secrets(model_args)
    public, credentials = secrets.url_credentials(public)
    secrets.stash({**secret, **credentials})
    if not _is_ours(model):
        if secret or credentials:
            print(
                f"failtrace: warning: model {model!r} receives "
                f"{', '.join(sorted({*secret, *credentials}))} as model arguments; lm-eval sees "
                "their secrets (failtrace scrubs them from what it prints and writes). Prefer "
                "environment variables.",
                file=sys.stderr,
            )
        return dict(model_args)
    known = backends.model_args(model)  # a misspelt name is refused before lm-eval prints it
    reject_unknown_args(str(model), {k: v for k, v in model_args.items() if k not in known}, known)
    if "seed" not in public and seed and seed[0] is not None:
        public["seed"] = seed[0]
    if model == "failtrace-local-completions" and output_path and "journal" not in public:
        from lm_failtrace.record.backends.completions import default_journal

        public["journal"] = str(default_journal(public, output_folder(output_path)))
    return public


def _config_model(path: str) -> tuple[dict[str, Any], Any]:
    """A ``--config`` YAML and its model arguments as a dict."""
    from lm_eval.config.evaluate_config import EvaluatorConfig
    from lm_eval.utils import simple_parse_args_string

    try:
        config = EvaluatorConfig.load_yaml_config(path)
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"not a usable lm-eval config: {exc}", path=path) from exc
    model_args = config.get("model_args") or {}
    if isinstance(model_args, str):
        model_args = simple_parse_args_string(model_args)
    return config, model_args


def _hide_secrets(parsed: argparse.Namespace, workdir: Path) -> str | None:
    """Take our backends' secrets out of ``parsed`` before lm-eval sees (and writes) it.

    A ``--config`` file is replaced by a copy in ``workdir`` whose model arguments were treated
    the same way. Returns where lm-eval will write (``--output_path``, else the config's).
    """
    import yaml

    config, config_args = _config_model(parsed.config) if parsed.config else ({}, {})
    model = parsed.model or config.get("model") or "hf"
    seed = parsed.seed if parsed.seed is not None else config.get("seed")
    if isinstance(seed, int):
        seed = [seed]
    output_path = parsed.output_path or config.get("output_path")
    if parsed.config:
        config["model_args"] = _private_model_args(config_args, model, seed, output_path)
        parsed.config = str(workdir / Path(parsed.config).name)
        Path(parsed.config).write_text(yaml.safe_dump(config), encoding="utf-8")
    if parsed.model_args or (not parsed.config and _is_ours(model)):
        parsed.model_args = _private_model_args(parsed.model_args or {}, model, seed, output_path)
    return output_path


def _execute(parser: Any, parsed: argparse.Namespace, output_path: str | None) -> EvalResult:
    """Run lm-eval, then write side-cars of the new samples logs; scrub outputs even on failure."""
    before = samples_files(output_path) if output_path else {}
    start_ns = time.time_ns()
    sidecars: list[Path] = []
    try:
        with secrets.redacted_output():
            parser.execute(parsed)
            if output_path:
                after = samples_files(output_path)
                changed = [p for p, mtime in after.items() if before.get(p) != mtime]
                sidecars = write_sidecars(changed)
    finally:
        if output_path:
            secrets.redact_files(_written_since(output_path, start_ns), secrets.secret_values())
    return EvalResult(Path(output_path) if output_path else None, tuple(sidecars))


def _written_since(output_path: str, start_ns: int) -> list[Path]:
    root = output_folder(output_path)
    if not root.is_dir():
        return []
    return [p for p in root.rglob("*") if p.is_file() and p.stat().st_mtime_ns >= start_ns]
