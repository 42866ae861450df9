"""Helpers every command shares: input-error handling and JSON output."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from lm_failtrace.errors import InputError
from lm_failtrace.formatting import to_jsonable

F = TypeVar("F", bound=Callable[..., Any])


#: Library parameters whose flag is not ``--`` + the name with dashes (the one place the CLI's
#: flags and the library's parameters meet).
_FLAG_EXCEPTIONS: dict[str, str] = {
    "n_folds": "--folds",
    "n_repeats": "--repeats",
    "random_state": "--seed",
    "mapping": "--map",
    "model_args": "--model-args",
    "max_gen_toks": "--max-gen-toks",
    "tasks": "--task",
    "cells": "--cell",
    "old": "OLD",
    "new": "NEW",
    "out_dir": "--output-dir",
    "score_values": "--score-value",
}

#: Parameters the CLI exposes under their own name (``--`` + dashes); others are not flags.
_FLAGS: frozenset[str] = frozenset(
    {
        "alias", "aliases", "attempts", "checkpoint", "fallback", "features", "force", "labels",
        "ladder", "lm_eval_run", "match_task", "model_name", "model_version", "name",
        "operators", "output", "plot", "policies", "repeats", "rescue", "restart", "scorer",
        "seed", "version", "versions", "temperature", "token_budget", "tracking_uri", "trials",
    }
)  # fmt: skip


def flag_name(parameter: str) -> str | None:
    """The command-line flag of a library parameter, or ``None`` when the CLI has none."""
    if parameter in _FLAG_EXCEPTIONS:
        return _FLAG_EXCEPTIONS[parameter]
    return "--" + parameter.replace("_", "-") if parameter in _FLAGS else None


class InputErrorExit(click.ClickException):
    """Bad input: one line on stderr, exit code 2."""

    exit_code = 2


def reports_input_errors(func: F) -> F:
    """Turn :class:`InputError` raised by the library into a clean click error (exit 2).

    The library names parameters (``operators``); the message names their flags (``--operators``).
    A message may quote an argument: URL credentials and known secrets never reach the terminal.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            from lm_failtrace.record.secrets import redact_text

            raise InputErrorExit(redact_text(exc.format(flag_name))) from exc

    return wrapper  # type: ignore[return-value]


def parse_pairs(items: tuple[str, ...], flag: str, metavar: str) -> dict[str, str]:
    """``KEY=VALUE`` option values as a dict (both sides stripped; a later key wins).

    Raises:
        click.BadParameter: an item without ``=`` or with an empty side (exit 2, naming ``flag``).
    """
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise click.BadParameter(f"{item!r} is not {metavar}", param_hint=flag)
        pairs[key.strip()] = value.strip()
    return pairs


def echo_json(document: Any) -> None:
    """Print one strict JSON document on stdout."""
    click.echo(json.dumps(to_jsonable(document), indent=2, allow_nan=False))


def _policy_names(values: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """``policies=`` of the configuration from ``--policies`` values; empty = the defaults."""
    names = tuple(name.strip() for value in values for name in value.split(",") if name.strip())
    return {"policies": names} if names else {}


def analysis_options(func: F) -> F:
    """The analysis settings shared by every command that analyses (analyze, log).

    The decorated command receives one ``config`` argument (an :class:`AnalysisConfig`,
    already checked) instead of the individual options; columns not given stay unset, so the
    analysis uses what the table holds.
    """
    options = [
        click.option(
            "--features",
            multiple=True,
            help="Routing feature columns, comma-separated or repeated; presets: logit, "
            "outcome. Default: the table's features whose operator it holds.",
        ),
        click.option(
            "--operators",
            multiple=True,
            help="Operator rescue-rate columns (must include retry); default: the table's.",
        ),
        click.option(
            "--map",
            "routes",
            multiple=True,
            metavar="FEATURE=OPERATOR",
            help="Route a feature to an operator in the paper rule (adds to / overrides the "
            "defaults).",
        ),
        click.option(
            "--fallback",
            default=None,
            help="Operator when no z-score is positive [sparse_steer_random, else retry].",
        ),
        click.option(
            "--policies",
            multiple=True,
            help="Policies the honest protocol compares and deployment selects from, "
            "comma-separated or repeated (opt-in: gbm_router). Default: paper_rule, best_fixed, "
            "retry, ridge_router.",
        ),
        click.option("--folds", default=5, show_default=True, type=click.IntRange(min=2)),
        click.option("--repeats", default=10, show_default=True, type=click.IntRange(min=1)),
        click.option(
            "--seed", default=0, show_default=True, type=int, help="Seed of folds and clustering."
        ),
        click.option(
            "--token-budget",
            default=1.0,
            show_default=True,
            type=float,
            metavar="MULTIPLE",
            help="Compare policies at this spend: a multiple of always-retry's mean generated "
            "tokens per failure unit (needs <operator>_tokens columns; ignored, and said so, "
            "without them). Routers weigh tokens to meet it, may skip units, and selection passes "
            "over policies whose held-out spend is over it.",
        ),
        click.option(
            "--labels",
            default=None,
            metavar="COLUMN",
            help="A categorical column of known labels (e.g. failure mechanisms): report their "
            "contingency and adjusted Rand index with regimes and routes, and how well the "
            "features predict them.",
        ),
    ]

    @functools.wraps(func)
    def wrapper(
        *args: Any,
        features: tuple[str, ...],
        operators: tuple[str, ...],
        routes: tuple[str, ...],
        fallback: str | None,
        policies: tuple[str, ...],
        folds: int,
        repeats: int,
        seed: int,
        token_budget: float,
        labels: str | None,
        **kwargs: Any,
    ) -> Any:
        from lm_failtrace.analysis import DEFAULT_MAPPING, AnalysisConfig
        from lm_failtrace.profiles import ProfileSchema

        schema = ProfileSchema.from_options(features or None, operators or None)
        mapping = {**DEFAULT_MAPPING, **parse_pairs(routes, "--map", "FEATURE=OPERATOR")}
        config = AnalysisConfig(
            features=schema.features,
            operators=schema.operators,
            mapping=mapping,
            fallback=fallback,
            n_folds=folds,
            n_repeats=repeats,
            random_state=seed,
            **_policy_names(policies),
            labels=labels,
            token_budget=token_budget,
        )
        return func(*args, config=config.check(), **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]
