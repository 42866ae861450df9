"""Failure-profile tables: the one data type between recording and analysis.

Built from rollouts (:func:`build_profiles`), with rescue columns from other runs of the same
problems when asked (``rescue=``, ``ladder=``, :func:`add_rescue`).
"""

from lm_failtrace.profiles._io import (
    ProfileData,
    ProfileTable,
    as_profile_table,
    check_table_path,
    read_profiles,
    validate_profiles,
    write_profiles,
)
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
    cell_name,
    cell_task,
    resolve_features,
)
from lm_failtrace.profiles.build import ProfileBuild, add_rescue, build_profiles
from lm_failtrace.profiles.rescue import RescueColumn

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
    "ProfileBuild",
    "ProfileData",
    "ProfileSchema",
    "ProfileTable",
    "RescueColumn",
    "add_rescue",
    "as_profile_table",
    "build_profiles",
    "cell_name",
    "cell_task",
    "check_table_path",
    "read_profiles",
    "resolve_features",
    "validate_profiles",
    "write_profiles",
]
