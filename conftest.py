"""Fixtures for every test, doctests of ``src/`` included: isolated cache and run directories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def _session_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mirsim-cache")


@pytest.fixture(autouse=True)
def _isolated_cache(_session_cache_dir: Path) -> Iterator[None]:
    """Point ``MIRSIM_CACHE_DIR`` and ``MIRSIM_RUNS_DIR`` at a session temporary directory, and
    restore them afterwards: tests never write to the user's cache or working directory."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MIRSIM_CACHE_DIR", str(_session_cache_dir))
        mp.setenv("MIRSIM_RUNS_DIR", str(_session_cache_dir / "runs"))
        yield
