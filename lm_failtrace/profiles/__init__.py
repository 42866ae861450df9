"""Failure-profile tables: the one data type between recording and analysis."""

from lm_failtrace.profiles._io import ProfileTable, read_profiles, validate_profiles, write_profiles
from lm_failtrace.profiles._schema import (
    ALL_OPERATORS,
    FEATURE_PRESETS,
    ID_COLUMNS,
    KNOWN_FEATURES,
    LOGIT_FEATURES,
    OPTIONAL_COLUMNS,
    OUTCOME_FEATURES,
    PAPER_OPERATORS,
    SCHEMA_METADATA_KEY,
    TOKENS_SUFFIX,
    ProfileSchema,
    resolve_features,
)

__all__ = [
    "ALL_OPERATORS",
    "FEATURE_PRESETS",
    "ID_COLUMNS",
    "KNOWN_FEATURES",
    "LOGIT_FEATURES",
    "OPTIONAL_COLUMNS",
    "OUTCOME_FEATURES",
    "PAPER_OPERATORS",
    "SCHEMA_METADATA_KEY",
    "TOKENS_SUFFIX",
    "ProfileSchema",
    "ProfileTable",
    "read_profiles",
    "resolve_features",
    "validate_profiles",
    "write_profiles",
]
