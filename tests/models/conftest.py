"""Fixtures for the bundled tiny pair: the trainer script loaded as a module."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

TRAINER = Path(__file__).resolve().parents[2] / "scripts" / "train_tiny_pair.py"


@pytest.fixture(scope="session")
def trainer():
    """``scripts/train_tiny_pair.py`` imported (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("train_tiny_pair", TRAINER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
