"""pyproject lists packages explicitly (two folders install under other names): none is missing."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]


def test_every_subpackage_is_listed_in_pyproject() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "lm_failtrace").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    for name in listed:
        if name.startswith("lm_failtrace."):
            assert (REPO.joinpath(*name.split(".")) / "__init__.py").is_file(), name
    for name, folder in config["package-dir"].items():
        assert (REPO / folder / "__init__.py").is_file(), name
