"""Which columns of a profile table are identifiers, features and operator rescue rates.

A profile table has one row per failure unit (model, task, problem with at least one failed
rollout). Feature and operator columns are *configured*, never inferred from the header: a typo in
a column name must be an error, not a silently dropped feature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

#: Identifier columns every profile table has.
ID_COLUMNS: tuple[str, ...] = ("cell", "model", "task", "problem_id")

#: Per-unit bookkeeping columns that may be present (validated when present).
OPTIONAL_COLUMNS: tuple[str, ...] = ("n_rollouts", "n_failed_rollouts", "pass_rate")

#: The paper's white-box features (method.md section 2).
LOGIT_FEATURES: tuple[str, ...] = ("spread", "concentration", "logit_dispersion")

#: Our black-box outcome features (method.md section 3).
OUTCOME_FEATURES: tuple[str, ...] = ("answer_entropy", "mode_share", "truncation_rate")

#: The paper's five operators (method.md section 6), `retry` first.
PAPER_OPERATORS: tuple[str, ...] = (
    "retry",
    "sparse_steer",
    "sparse_steer_random",
    "local_temp",
    "dense_steer",
)

#: Every operator lm-failtrace knows how to apply.
ALL_OPERATORS: tuple[str, ...] = (*PAPER_OPERATORS, "budget", "temp_shift")

#: Named feature sets accepted wherever a feature list is.
FEATURE_PRESETS: dict[str, tuple[str, ...]] = {
    "logit": LOGIT_FEATURES,
    "outcome": OUTCOME_FEATURES,
}

#: Columns whose values are rates and must lie in [0, 1].
RATE_COLUMNS: frozenset[str] = frozenset(
    {"pass_rate", "answer_entropy", "mode_share", "truncation_rate", "no_answer_rate", "spread"}
)


def resolve_features(names: Sequence[str] | str | None) -> tuple[str, ...]:
    """Expand feature presets (``logit``, ``outcome``) and comma lists into column names."""
    if names is None:
        return LOGIT_FEATURES
    if isinstance(names, str):
        names = [names]
    out: list[str] = []
    for item in names:
        for name in str(item).split(","):
            name = name.strip()
            if not name:
                continue
            out.extend(FEATURE_PRESETS.get(name, (name,)))
    return tuple(dict.fromkeys(out))


def _split(names: Sequence[str] | str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if names is None:
        return default
    if isinstance(names, str):
        names = [names]
    return tuple(
        dict.fromkeys(n.strip() for item in names for n in str(item).split(",") if n.strip())
    )


@dataclass(frozen=True)
class ProfileSchema:
    """The column roles of a profile table.

    Args:
        features: routing/feature columns (presets ``logit`` and ``outcome`` expand).
        operators: operator rescue-rate columns; ``retry`` must be among them for regimes.
    """

    features: tuple[str, ...] = LOGIT_FEATURES
    operators: tuple[str, ...] = PAPER_OPERATORS
    id_columns: tuple[str, ...] = field(default=ID_COLUMNS)

    @classmethod
    def from_options(
        cls,
        features: Sequence[str] | str | None = None,
        operators: Sequence[str] | str | None = None,
    ) -> ProfileSchema:
        """Build a schema from CLI-style values (comma lists, presets, or None for defaults)."""
        return cls(
            features=resolve_features(features), operators=_split(operators, PAPER_OPERATORS)
        )

    @property
    def numeric_columns(self) -> tuple[str, ...]:
        return (*self.features, *self.operators)
