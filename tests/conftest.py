"""Shared fixtures: where the Cyberlioz test data is, an isolated cache for every test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mirsim.features.extraction import FeatureCache


def _cyberlioz_location() -> Path:
    """``$MIRSIM_TEST_CYBERLIOZ``, else ``shared/data/cyberlioz`` next to the repository."""
    if os.environ.get("MIRSIM_TEST_CYBERLIOZ"):
        return Path(os.environ["MIRSIM_TEST_CYBERLIOZ"]).expanduser()
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "cyberlioz"


@pytest.fixture(scope="session")
def cyberlioz_dir() -> Path:
    """The Cyberlioz seed-set directory (read-only: copy it before changing anything)."""
    path = _cyberlioz_location()
    if not (path / "seed_filelist.csv").is_file() or not (path / "audio").is_dir():
        pytest.skip(f"Cyberlioz test data not found at {path} (set MIRSIM_TEST_CYBERLIOZ)")
    return path


@pytest.fixture(scope="session")
def feature_cache(tmp_path_factory: pytest.TempPathFactory) -> FeatureCache:
    """A feature cache in a temporary directory, shared by the session's tests."""
    return FeatureCache(tmp_path_factory.mktemp("features"))


@pytest.fixture(scope="module")
def isolated_env(_session_cache_dir):
    """The test session's cache for module-scoped fixtures too (they start before the
    per-test isolation of the root conftest); torch on one thread."""
    import torch

    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MIRSIM_CACHE_DIR", str(_session_cache_dir))
        mp.setenv("MIRSIM_RUNS_DIR", str(_session_cache_dir / "runs"))
        yield


@pytest.fixture(scope="session")
def csn_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """18 sounds: three timbres (folders) x 6 pitches (numbered in file names)."""
    from synthetic_audio import write_timbre_library

    return write_timbre_library(tmp_path_factory.mktemp("csn") / "tones", 6)


@pytest.fixture(scope="session")
def csn_run(csn_library: Path, tmp_path_factory: pytest.TempPathFactory,
            feature_cache: FeatureCache) -> Path:
    """A `mirsim train`-style run directory of a CSN with aspects ``timbre`` and ``register``
    (:func:`run_dirs.csn_run_dir`)."""
    import torch

    from run_dirs import csn_run_dir

    torch.set_num_threads(1)
    return csn_run_dir(tmp_path_factory.mktemp("csn-run") / "run", csn_library, feature_cache)


@pytest.fixture(scope="session")
def csn_index(csn_library: Path, csn_run: Path, tmp_path_factory: pytest.TempPathFactory,
              feature_cache: FeatureCache) -> Path:
    """The index of :func:`csn_library` built with :func:`csn_run` (it has aspects)."""
    from mirsim.index import build_index

    out = tmp_path_factory.mktemp("csn-index") / "tones.index"
    build_index(csn_library, out, run_dir=csn_run, cache=feature_cache)
    return out


@pytest.fixture(scope="session")
def per_instrument_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``reproduce per-instrument --quick`` run with its models
    (:func:`run_dirs.per_instrument_run_dir`)."""
    from run_dirs import per_instrument_run_dir

    return per_instrument_run_dir(tmp_path_factory.mktemp("per-instrument-runs"))


@pytest.fixture(scope="session")
def slakh_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four synthetic Slakh-layout songs and one plain song file
    (:func:`run_dirs.write_slakh_songs`)."""
    from run_dirs import write_slakh_songs

    return write_slakh_songs(tmp_path_factory.mktemp("slakh") / "songs", 4)


@pytest.fixture(scope="session")
def per_instrument_index(slakh_library: Path, per_instrument_run: Path,
                         tmp_path_factory: pytest.TempPathFactory,
                         feature_cache: FeatureCache) -> Path:
    """The per-instrument index of :func:`slakh_library` by :func:`per_instrument_run`."""
    from mirsim.index import build_index

    out = tmp_path_factory.mktemp("per-instrument-index") / "songs.index"
    build_index(slakh_library, out, run_dir=per_instrument_run, cache=feature_cache)
    return out
