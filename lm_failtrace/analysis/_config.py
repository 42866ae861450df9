"""Analysis configuration: which columns, which operators, which thresholds and how to cross-fit.

One frozen dataclass crosses from the CLI (and the MLflow logger) into the engine, so every number
in an analysis document can be traced back to the configuration printed next to it. Columns left
unset mean "what the table holds": :meth:`AnalysisConfig.resolved` turns them into the table's
columns at the start of an analysis, and the resolved configuration is the one printed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace

from lm_failtrace.analysis._defaults import (
    DEFAULT_FALLBACK,
    DEFAULT_MAPPING,
    DEFAULT_POLICIES,
    DEFAULT_TOKEN_BUDGET,
    RETRY,
    SKIP,
)
from lm_failtrace.analysis._registry import POLICIES
from lm_failtrace.analysis._rule import PaperRule
from lm_failtrace.errors import InputError
from lm_failtrace.profiles import ProfileSchema


@dataclass(frozen=True)
class AnalysisConfig:
    """Everything an analysis depends on besides the table.

    Args:
        features: routing feature columns, in tie-break order (the first largest z wins);
            ``None`` = the table's features that route to an operator it holds.
        operators: operator rescue-rate columns; must include ``retry``; ``None`` = the table's.
        mapping: feature -> operator for the paper's rule; ``None`` = :data:`DEFAULT_MAPPING`.
        fallback: operator when every z-score is <= 0; ``None`` = :data:`DEFAULT_FALLBACK`, or
            ``retry`` when the operators lack it.
        delta: regime threshold on ``best - retry`` (docs/method.md section 4).
        reach: regime threshold on ``1 - retry``.
        n_repeats: repeats of K-fold cross-fitting in the honest protocol.
        n_folds: folds per repeat.
        random_state: seed of every random choice (folds, clustering, bootstrap).
        policies: policies the honest protocol compares (the oracle is always added as ceiling).
        confidence: level of the reported intervals.
        n_bootstrap: bootstrap resamples for clustering stability.
        k_range: candidate numbers of clusters (inclusive bounds), chosen by silhouette.
        labels: a categorical column of known labels (failure mechanisms, hand-labelled
            categories) to compare the regimes and routes with; ``None`` = no comparison.
        token_budget: the spend policies are compared at, as a multiple of always-retry's mean
            generated tokens per failure unit (1.0 = the same spend as always retrying; 0 =
            spend nothing). Routers weigh tokens to meet it, the best fixed operator is chosen
            among those within it, and selection passes over policies that exceed it. Used only
            when the table has ``<operator>_tokens`` columns (docs/method.md section 8, *Cost*).
        notes: what :meth:`resolved` chose for unset columns and why (features dropped, the
            fallback substituted), so the analysis document says it.
    """

    features: tuple[str, ...] | None = None
    operators: tuple[str, ...] | None = None
    mapping: Mapping[str, str] | None = None
    fallback: str | None = None
    delta: float = 0.05
    reach: float = 0.50
    n_repeats: int = 10
    n_folds: int = 5
    random_state: int = 0
    policies: tuple[str, ...] = field(default=DEFAULT_POLICIES)
    confidence: float = 0.95
    n_bootstrap: int = 20
    k_range: tuple[int, int] = (2, 6)
    labels: str | None = None
    token_budget: float = DEFAULT_TOKEN_BUDGET
    notes: tuple[str, ...] = ()

    @property
    def full_mapping(self) -> Mapping[str, str]:
        """The feature -> operator mapping of the paper's rule, for every feature it knows."""
        return DEFAULT_MAPPING if self.mapping is None else self.mapping

    @property
    def routing_map(self) -> dict[str, str]:
        """The feature -> operator mapping restricted to :attr:`features`, in feature order."""
        mapping = self.full_mapping
        return {f: mapping[f] for f in self.features or () if f in mapping}

    @property
    def schema(self) -> ProfileSchema:
        """The columns to read a table with (for :func:`read_profiles`; None = the table's)."""
        return ProfileSchema(features=self.features, operators=self.operators)

    def paper_rule(self) -> PaperRule:
        """The paper's routing rule (unfitted) on a :meth:`resolved` configuration."""
        return PaperRule(tuple(self.features or ()), self.routing_map, self.fallback)

    def resolved(self, table: ProfileSchema) -> AnalysisConfig:
        """This configuration made concrete for a table whose schema is ``table``, and checked.

        Unset operators become the table's. Unset features become the table's features whose
        mapped operator is among the operators: the rule cannot route to an operator nobody
        measured, so the others are dropped, each with a note (a feature asked for explicitly
        stays an error instead). An unset fallback becomes :data:`DEFAULT_FALLBACK`, or
        ``retry`` (always measured) when the operators lack it, with a note.
        """
        operators = self.operators if self.operators is not None else table.operators or ()
        notes = list(self.notes)
        features = self.features
        if features is None:
            features = self._routable(table.features or (), operators, notes)
        fallback = self.fallback
        if fallback is None:
            fallback = DEFAULT_FALLBACK if DEFAULT_FALLBACK in operators else RETRY
            if fallback != DEFAULT_FALLBACK:
                notes.append(
                    f"fallback {RETRY!r}: the default {DEFAULT_FALLBACK!r} is not among the "
                    "operators"
                )
        resolved = replace(
            self, features=features, operators=operators, fallback=fallback, notes=tuple(notes)
        )
        return resolved.check()

    def _routable(
        self, features: tuple[str, ...], operators: tuple[str, ...], notes: list[str]
    ) -> tuple[str, ...]:
        """The ``features`` the paper's rule can route with ``operators``; a note per other one.

        Raises:
            InputError: none is left (the message says why each was dropped).
        """
        mapping = self.full_mapping
        kept = tuple(f for f in features if mapping.get(f) in operators)
        dropped = [
            f"feature {f!r} dropped: it routes to {mapping[f]!r}, which is not among the operators"
            if f in mapping
            else f"feature {f!r} dropped: it has no operator in the routing mapping"
            for f in features
            if f not in kept
        ]
        if not kept:
            why = "; ".join(dropped) or "the table declares no feature columns"
            raise InputError(f"no feature to route with ({why})", parameter="features")
        notes.extend(dropped)
        return kept

    def check(self) -> AnalysisConfig:
        """Raise :class:`InputError` naming the parameter when the configuration is inconsistent.

        Columns left to the table (``None``) are checked once :meth:`resolved` knows them.
        """
        self._check_columns()
        self._check_routing()
        for name in self.policies:
            if name not in POLICIES:
                raise InputError(
                    f"unknown policy {name!r} (known: {', '.join(POLICIES)})", parameter="policies"
                )
        if self.n_folds < 2:
            raise InputError("cross-fitting needs at least 2 folds", parameter="n_folds")
        if self.n_repeats < 1:
            raise InputError("cross-fitting needs at least 1 repeat", parameter="n_repeats")
        if not 0 < self.confidence < 1:
            raise InputError("must lie strictly between 0 and 1", parameter="confidence")
        budget = self.token_budget
        if isinstance(budget, bool) or not isinstance(budget, numbers.Real):
            raise InputError(f"must be a number, got {budget!r}", parameter="token_budget")
        if not math.isfinite(budget) or budget < 0:
            raise InputError(
                f"must be a finite number >= 0 (a multiple of always-retry's tokens), got {budget}",
                parameter="token_budget",
            )
        return self

    def _check_columns(self) -> None:
        """Regimes compare every operator to retry; routing needs at least one feature."""
        if self.features is not None and not self.features:
            raise InputError("no feature columns configured", parameter="features")
        if self.labels is not None and not self.labels.strip():
            raise InputError("empty label column name", parameter="labels")
        if self.operators is not None and RETRY not in self.operators:
            raise InputError(f"must include {RETRY!r} to label regimes", parameter="operators")
        if self.operators is not None and SKIP in self.operators:
            raise InputError(
                f"{SKIP!r} names the choice to repair nothing; rename that operator column",
                parameter="operators",
            )

    def _check_routing(self) -> None:
        """Every feature routes to an operator that was measured, and so does the fallback."""
        mapping, operators = self.full_mapping, self.operators
        for feature in self.features or ():
            if feature not in mapping:
                raise InputError(
                    f"feature {feature!r} has no operator in the routing mapping "
                    f"(known: {', '.join(mapping)}); give one in `mapping` ({feature}=OPERATOR)",
                    parameter="features",
                )
            if operators is not None and mapping[feature] not in operators:
                raise InputError(
                    f"feature {feature!r} routes to operator {mapping[feature]!r}, which is not "
                    f"among the operators ({', '.join(operators)}); add it to `operators`",
                    parameter="features",
                )
        if self.fallback is not None and operators is not None and self.fallback not in operators:
            raise InputError(
                f"operator {self.fallback!r} is not among the operators", parameter="fallback"
            )

    def to_dict(self) -> dict:
        """A JSON-able copy (the mapping is written out in full)."""
        out = asdict(self)
        out["mapping"] = self.routing_map
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}
