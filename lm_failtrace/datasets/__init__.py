"""Bundled reference data: the paper's per-problem failure profiles.

Why bundled: the reference numbers of the paper's published evaluation (docs/method.md section 5)
are what the analysis is checked against, so the table they come from ships with the package. A
clone or an installed wheel reproduces them with nothing beside it
(``failtrace analyze --example paper``), and the tests read the same file.

``paper/failure_profiles.csv`` holds 4 of the 8 (model, task) cells of ``failure_profiles.csv``
from the paper's code release (github NizarIslah/vllm-logits, Apache-2.0; Islah et al.,
arXiv 2606.05145): per failure unit, the three logit features and the measured rescue rates of the
paper's five operators. Source, licence and columns: ``paper/README.md`` next to it.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lm_failtrace.profiles import ProfileSchema, ProfileTable


def paper_profiles_path() -> Path:
    """Path of the bundled paper profile table (a CSV file inside the installed package).

    Returns:
        The CSV's path, readable with :func:`lm_failtrace.profiles.read_profiles` or passed to any
        command that takes a profile table.
    """
    return Path(str(files(__name__) / "paper" / "failure_profiles.csv"))


def paper_profiles(schema: ProfileSchema | None = None) -> ProfileTable:
    """The bundled paper profile table, read and validated like any user's table.

    Args:
        schema: column roles; defaults to the paper's three logit features and five operators,
            which is what the file holds.

    Returns:
        A :class:`lm_failtrace.profiles.ProfileTable` with one row per failure unit of the 4 cells
        (672 units).
    """
    # Imported here so that ``import lm_failtrace.datasets`` stays cheap (the CLI lists the
    # examples without loading pandas).
    from lm_failtrace.profiles import read_profiles

    return read_profiles(paper_profiles_path(), schema)


#: Bundled example tables by name (``failtrace analyze --example NAME``) -> their path.
EXAMPLES: dict[str, Callable[[], Path]] = {"paper": paper_profiles_path}

__all__ = ["EXAMPLES", "paper_profiles", "paper_profiles_path"]
