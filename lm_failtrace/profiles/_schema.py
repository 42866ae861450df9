"""Which columns of a profile table are identifiers, features and operator rescue rates.

A profile table has one row per failure unit (model, task, problem with at least one failed
rollout). The table carries its schema: the builders (``failtrace profile``, ``failtrace repair``)
record which features and operators they measured, in the Parquet file's metadata; a CSV file
declares what its columns imply (:meth:`ProfileSchema.from_frame`). A schema passed to a reader or
an analysis is a request that narrows the table's own, and a requested column the table lacks is
an error naming it: a typo must never become a silently dropped feature.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

#: Identifier columns every profile table has.
ID_COLUMNS: tuple[str, ...] = ("cell", "model", "task", "problem_id")


def cell_name(model: str, task: str) -> str:
    """A cell's name, ``model|task``: the population inside which features are compared."""
    return f"{model}|{task}"


def cell_task(cell: str) -> str:
    """The task of a cell named by :func:`cell_name`."""
    return cell.split("|", 1)[-1]


#: Per-unit bookkeeping columns that may be present (validated when present).
OPTIONAL_COLUMNS: tuple[str, ...] = ("n_rollouts", "n_failed_rollouts", "pass_rate")

#: The paper's white-box features (docs/method.md section 2).
LOGIT_FEATURES: tuple[str, ...] = ("spread", "concentration", "logit_dispersion")

#: Our black-box outcome features (docs/method.md section 3).
OUTCOME_FEATURES: tuple[str, ...] = ("answer_entropy", "mode_share", "truncation_rate")

#: Every feature lm-failtrace measures, in the order a table's features take when its columns
#: imply them (logit features first: the routing rule breaks z-score ties by feature order).
KNOWN_FEATURES: tuple[str, ...] = (*LOGIT_FEATURES, *OUTCOME_FEATURES)

#: The paper's five operators (docs/method.md section 6), `retry` first.
PAPER_OPERATORS: tuple[str, ...] = (
    "retry",
    "sparse_steer",
    "sparse_steer_random",
    "local_temp",
    "dense_steer",
)

#: Every operator lm-failtrace knows how to apply.
ALL_OPERATORS: tuple[str, ...] = (*PAPER_OPERATORS, "budget", "temp_shift")

#: Suffix of the optional per-operator compute columns: ``<operator>_tokens`` is the mean number
#: of tokens one trial of the operator generated (written by ``failtrace repair``).
TOKENS_SUFFIX = "_tokens"

#: Named feature sets accepted wherever a feature list is.
FEATURE_PRESETS: dict[str, tuple[str, ...]] = {
    "logit": LOGIT_FEATURES,
    "outcome": OUTCOME_FEATURES,
}

#: Columns whose values are rates and must lie in [0, 1].
RATE_COLUMNS: frozenset[str] = frozenset(
    {"pass_rate", "answer_entropy", "mode_share", "truncation_rate", "no_answer_rate", "spread"}
)

#: Parquet key-value metadata entry in which a written table declares its schema.
SCHEMA_METADATA_KEY = "lm_failtrace.schema"

#: Layout version of that entry (a reader refuses layouts it does not know).
SCHEMA_FORMAT = 1


def resolve_features(names: Sequence[str] | str) -> tuple[str, ...]:
    """Expand feature presets (``logit``, ``outcome``) and comma lists into column names."""
    expanded = (column for name in _split(names) for column in FEATURE_PRESETS.get(name, (name,)))
    return tuple(dict.fromkeys(expanded))


def _split(names: Sequence[str] | str) -> tuple[str, ...]:
    """Comma lists and repeated values (CLI style) -> names, in order, without duplicates."""
    if isinstance(names, str):
        names = [names]
    return tuple(
        dict.fromkeys(n.strip() for item in names for n in str(item).split(",") if n.strip())
    )


@dataclass(frozen=True)
class ProfileSchema:
    """The column roles of a profile table.

    A :class:`~lm_failtrace.profiles.ProfileTable` always holds a complete schema (what the table
    declares). Passed to a reader, a schema is a request: ``None`` keeps what the table holds,
    a tuple replaces it (:meth:`resolved`).

    Args:
        features: feature columns, in tie-break order (presets ``logit`` and ``outcome`` expand
            in :meth:`from_options`); ``None`` = the table's.
        operators: operator rescue-rate columns; ``None`` = the table's.
    """

    features: tuple[str, ...] | None = None
    operators: tuple[str, ...] | None = None
    id_columns: tuple[str, ...] = field(default=ID_COLUMNS)

    @classmethod
    def from_options(
        cls,
        features: Sequence[str] | str | None = None,
        operators: Sequence[str] | str | None = None,
    ) -> ProfileSchema:
        """A request from CLI-style values (comma lists, presets; None = what the table holds)."""
        return cls(
            features=None if features is None else resolve_features(features),
            operators=None if operators is None else _split(operators),
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> ProfileSchema:
        """The schema a table's columns imply, for a table that declares none (CSV, a frame).

        Features: the known feature columns (:data:`KNOWN_FEATURES` order) holding at least one
        value. An empty column is a feature nobody measured (``truncation_rate`` of a backend
        that reports no finish reasons), so declaring it would make the table unreadable; a
        partly empty one stays declared, and its gaps are errors to report. Operators: the known
        operator columns (:data:`ALL_OPERATORS` order; empty = not assayed), then any other
        column with a ``<name>_tokens`` companion, the pair ``failtrace repair`` writes for every
        operator, registered ones included. No other column is guessed to be either.
        """
        columns = [str(c) for c in frame.columns]
        features = tuple(f for f in KNOWN_FEATURES if f in columns and frame[f].notna().any())
        paired = [c for c in columns if c + TOKENS_SUFFIX in columns and c not in ALL_OPERATORS]
        known = [op for op in ALL_OPERATORS if op in columns]
        return cls(features=features, operators=(*known, *paired))

    @classmethod
    def from_json(cls, text: str | bytes) -> ProfileSchema:
        """Read the schema a table declares (:meth:`to_json`); ValueError when malformed."""
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("format") != SCHEMA_FORMAT:
            raise ValueError(f"expected format {SCHEMA_FORMAT}")
        lists = [doc.get("features"), doc.get("operators")]
        if not all(isinstance(v, list) and all(isinstance(n, str) for n in v) for v in lists):
            raise ValueError("features and operators must be lists of column names")
        return cls(features=tuple(lists[0]), operators=tuple(lists[1]))

    def to_json(self) -> str:
        """The declaration a written table carries (of a table's schema, which names both roles)."""
        return json.dumps(
            {
                "features": list(self.features or ()),
                "operators": list(self.operators or ()),
                "format": SCHEMA_FORMAT,
            }
        )

    def resolved(self, declared: ProfileSchema) -> ProfileSchema:
        """This request completed from ``declared`` (a table's own schema) where it says None."""
        return ProfileSchema(
            features=declared.features if self.features is None else self.features,
            operators=declared.operators if self.operators is None else self.operators,
            id_columns=self.id_columns,
        )

    @property
    def numeric_columns(self) -> tuple[str, ...]:
        return (*(self.features or ()), *(self.operators or ()))
