"""``failtrace eval ARGS...``: lm-eval's own CLI with our backends, side-cars and no leaked secrets.

A thin wrapper over :func:`lm_failtrace.record.run_eval` (what it changes about lm-eval's run is
described there) that adds our preface to lm-eval's help. Exit codes: 0 on success, 2 on bad
input (lm-eval's argument errors included), lm-eval's own otherwise.
"""

from __future__ import annotations

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


@click.command(
    "eval",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@reports_input_errors
def eval_command(args: tuple[str, ...]) -> None:
    """Run lm-eval with the failtrace backends; write rollout side-cars (ARGS go to lm-eval)."""
    from lm_failtrace.record import run_eval

    if not args or any(a in ("-h", "--help") for a in args):
        click.echo(_PREFACE)
        if len(args) <= 1:  # show the options of `run`, the command failtrace eval is for
            args = ("run", "--help")
    run_eval(args)
