"""The ``failtrace`` command line: one verb per pipeline step.

Commands are imported lazily (click's documented LazyGroup pattern) so that ``failtrace --help``
and light commands do not pay for importing MLflow, lm-eval or torch.
"""

from __future__ import annotations

import importlib

import click

from lm_failtrace import __version__

#: verb -> "module:attribute" of its click command. A new verb is one line here.
COMMANDS: dict[str, str] = {
    "log": "lm_failtrace.cli.log:log",
    "promote": "lm_failtrace.cli.promote:promote",
    "status": "lm_failtrace.cli.status:status",
    "analyze": "lm_failtrace.cli.analyze:analyze",
    "compare": "lm_failtrace.cli.compare:compare",
    "profile": "lm_failtrace.cli.profile:profile",
    "make-task": "lm_failtrace.cli.tasks:make_task",
    "tasks-path": "lm_failtrace.cli.tasks:tasks_path",
    "eval": "lm_failtrace.cli.eval:eval_command",
    "repair": "lm_failtrace.cli.repair:repair",
    "demo": "lm_failtrace.cli.demo:demo",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when invoked or listed in help."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="failtrace")
def main() -> None:
    """lm-failtrace: which LLM failures are fixable, and how to route test-time compute.

    Pipeline: record rollouts with lm-eval (`failtrace eval`), turn them into failure profiles
    (`failtrace profile`), analyse (`failtrace analyze`), track in MLflow (`failtrace log`).
    """
