"""Analysis configuration: which columns, which operators, which thresholds and how to cross-fit.

One frozen dataclass crosses from the CLI (and the MLflow logger) into the engine, so every number
in an analysis document can be traced back to the configuration printed next to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from lm_failtrace.analysis._defaults import (
    DEFAULT_FALLBACK,
    DEFAULT_MAPPING,
    DEFAULT_POLICIES,
    RETRY,
)
from lm_failtrace.analysis._registry import POLICIES
from lm_failtrace.analysis._rule import PaperRule
from lm_failtrace.errors import InputError
from lm_failtrace.profiles import LOGIT_FEATURES, PAPER_OPERATORS, ProfileSchema


@dataclass(frozen=True)
class AnalysisConfig:
    """Everything an analysis depends on besides the table.

    Args:
        features: routing feature columns, in tie-break order (the first largest z wins).
        operators: operator rescue-rate columns; must include ``retry``.
        mapping: feature -> operator for the paper's rule; ``None`` = :data:`DEFAULT_MAPPING`.
        fallback: operator when every z-score is <= 0.
        delta: regime threshold on ``best - retry`` (method.md section 4).
        reach: regime threshold on ``1 - retry``.
        n_repeats: repeats of K-fold cross-fitting in the honest protocol.
        n_folds: folds per repeat.
        random_state: seed of every random choice (folds, clustering, bootstrap).
        policies: policies the honest protocol compares (the oracle is always added as ceiling).
        confidence: level of the reported intervals.
        n_bootstrap: bootstrap resamples for clustering stability.
        k_range: candidate numbers of clusters (inclusive bounds), chosen by silhouette.
    """

    features: tuple[str, ...] = LOGIT_FEATURES
    operators: tuple[str, ...] = PAPER_OPERATORS
    mapping: Mapping[str, str] | None = None
    fallback: str = DEFAULT_FALLBACK
    delta: float = 0.05
    reach: float = 0.50
    n_repeats: int = 10
    n_folds: int = 5
    random_state: int = 0
    policies: tuple[str, ...] = field(default=DEFAULT_POLICIES)
    confidence: float = 0.95
    n_bootstrap: int = 20
    k_range: tuple[int, int] = (2, 6)

    @property
    def routing_map(self) -> dict[str, str]:
        """The feature -> operator mapping restricted to :attr:`features`, in feature order."""
        mapping = DEFAULT_MAPPING if self.mapping is None else self.mapping
        return {f: mapping[f] for f in self.features if f in mapping}

    @property
    def schema(self) -> ProfileSchema:
        """The profile-table schema these columns imply (for :func:`read_profiles`)."""
        return ProfileSchema(features=tuple(self.features), operators=tuple(self.operators))

    def paper_rule(self) -> PaperRule:
        """The paper's routing rule (unfitted) on this configuration's features and mapping."""
        return PaperRule(tuple(self.features), self.routing_map, self.fallback)

    def check(self) -> AnalysisConfig:
        """Raise :class:`InputError` naming the parameter when the configuration is inconsistent."""
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
        return self

    def _check_columns(self) -> None:
        """Regimes compare every operator to retry; routing needs at least one feature."""
        if not self.features:
            raise InputError("no feature columns configured", parameter="features")
        if RETRY not in self.operators:
            raise InputError(f"must include {RETRY!r} to label regimes", parameter="operators")

    def _check_routing(self) -> None:
        """Every feature routes to an operator that was measured, and so does the fallback."""
        mapping = DEFAULT_MAPPING if self.mapping is None else self.mapping
        for feature in self.features:
            if feature not in mapping:
                raise InputError(
                    f"feature {feature!r} has no operator in the routing mapping "
                    f"(known: {', '.join(mapping)}); give one in `mapping` ({feature}=OPERATOR)",
                    parameter="features",
                )
            if mapping[feature] not in self.operators:
                raise InputError(
                    f"feature {feature!r} routes to operator {mapping[feature]!r}, which is not "
                    f"among the operators ({', '.join(self.operators)}); add it to `operators`",
                    parameter="features",
                )
        if self.fallback not in self.operators:
            raise InputError(
                f"operator {self.fallback!r} is not among the operators", parameter="fallback"
            )

    def to_dict(self) -> dict:
        """A JSON-able copy (the mapping is written out in full)."""
        out = asdict(self)
        out["mapping"] = self.routing_map
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}
