"""Feature extractors and the cached, fault-tolerant bulk extraction."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from mirsim.audio import AudioError, FileSource
from mirsim.errors import UnknownNameError
from mirsim.features import available_features, make_extractor
from mirsim.features.extraction import FeatureCache, extract_features

SR = 22050


def _harmonic(freq, seconds=1.0, n_harmonics=8, decay=1.0):
    t = np.arange(int(SR * seconds)) / SR
    y = sum(decay ** h * np.sin(2 * np.pi * freq * (h + 1) * t) / (h + 1) for h in range(n_harmonics))
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


@pytest.mark.parametrize("name, params, dim", [
    ("mfcc", {}, 40), ("mfcc", {"n_mfcc": 13}, 13), ("random", {"dim": 16}, 16),
    ("scat1d", {"J": 8, "Q": 4}, None),
])
def test_extractors_give_finite_vectors_of_fixed_size(name, params, dim):
    f = make_extractor(name, **params)
    a = f(_harmonic(220), SR)
    b = f(_harmonic(220, seconds=2.5), SR)  # longer sounds: only the first second is used
    assert a.ndim == 1 and a.dtype == np.float32 and np.isfinite(a).all()
    assert a.shape == b.shape
    if dim is not None:
        assert a.shape == (dim,)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_resampling_to_the_extractor_rate():
    f = make_extractor("mfcc")
    y = _harmonic(330)
    y44 = np.interp(np.arange(2 * len(y)) / 2, np.arange(len(y)), y).astype(np.float32)
    assert np.corrcoef(f(y, SR), f(y44, 2 * SR))[0, 1] > 0.99


def test_timbre_features_separate_bright_from_dull_sounds():
    # 40 harmonics (bright, sawtooth-like) vs 2 harmonics (dull), at three nearby pitches, over
    # a faint noise floor: a timbre feature must move more across timbres than across pitches
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 1e-3
    f = make_extractor("mfcc")
    bright = [f(_harmonic(p, n_harmonics=40) + noise, SR) for p in (200, 210, 220)]
    dull = [f(_harmonic(p, n_harmonics=2) + noise, SR) for p in (200, 210, 220)]
    within = np.linalg.norm(bright[0] - bright[1]) + np.linalg.norm(dull[0] - dull[2])
    across = np.linalg.norm(bright[0] - dull[0]) + np.linalg.norm(bright[1] - dull[1])
    assert across > 2 * within


def test_random_feature_is_a_content_seeded_control():
    f = make_extractor("random", dim=32)
    a, b = f(_harmonic(220), SR), f(_harmonic(220), SR)
    c = f(_harmonic(221), SR)
    assert np.array_equal(a, b) and not np.allclose(a, c)


def test_identity_changes_with_parameters_only():
    assert make_extractor("mfcc").identity == make_extractor("mfcc").identity
    assert make_extractor("mfcc").identity != make_extractor("mfcc", n_mfcc=20).identity
    assert make_extractor("mfcc").identity != make_extractor("scat1d").identity


def test_unknown_feature_lists_valid_names():
    with pytest.raises(UnknownNameError) as info:
        make_extractor("mfc")
    assert str(info.value) == f"unknown feature 'mfc' (valid: {', '.join(available_features())})"


@pytest.fixture
def sound_folder(tmp_path):
    paths = []
    for i, freq in enumerate((220, 330, 440, 550)):
        p = tmp_path / f"tone {i} é.wav"
        sf.write(str(p), _harmonic(freq), SR)
        paths.append(p)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("not audio\n" * 50)
    sf.write(str(tmp_path / "silent.wav"), np.zeros(SR), SR)
    return tmp_path, paths


def test_bulk_extraction_skips_bad_files_with_reasons(sound_folder, tmp_path_factory):
    folder, good = sound_folder
    sources = [FileSource(p) for p in good[:2]] + [FileSource(folder / "empty.wav"),
                                                   FileSource(folder / "text.wav"),
                                                   FileSource(folder / "silent.wav"),
                                                   FileSource(folder / "missing.wav")] + \
              [FileSource(p) for p in good[2:]]
    cache = FeatureCache(tmp_path_factory.mktemp("c"))
    r = extract_features(sources, make_extractor("mfcc"), cache=cache)
    assert r.ok.tolist() == [0, 1, 6, 7]
    assert r.features.shape == (4, 40)
    reasons = {name.rsplit("/", 1)[-1]: reason for _, name, reason in r.skipped}
    assert reasons["empty.wav"].startswith("empty file")
    assert reasons["text.wav"].startswith("not a readable sound file")
    assert reasons["silent.wav"].startswith("silent")
    assert reasons["missing.wav"] == "no such file"
    with pytest.raises(AudioError, match="empty.wav"):
        extract_features(sources, make_extractor("mfcc"), cache=cache, on_error="raise")


def test_second_run_reads_the_cache_and_gives_identical_features(sound_folder, tmp_path_factory):
    _, good = sound_folder
    cache = FeatureCache(tmp_path_factory.mktemp("c"))
    sources = [FileSource(p) for p in good]
    first = extract_features(sources, make_extractor("mfcc"), cache=cache)
    second = extract_features(sources, make_extractor("mfcc"), cache=cache)
    assert (first.n_computed, first.n_cached) == (4, 0)
    assert (second.n_computed, second.n_cached) == (0, 4)
    assert np.array_equal(first.features, second.features)
    assert not list(cache.root.rglob("*.tmp"))  # atomic writes leave nothing behind


def test_corrupt_cache_entry_is_recomputed(sound_folder, tmp_path_factory):
    _, good = sound_folder
    cache = FeatureCache(tmp_path_factory.mktemp("c"))
    f = make_extractor("mfcc")
    ref = extract_features([FileSource(good[0])], f, cache=cache).features
    entry = next(cache.root.rglob("*.npy"))
    entry.write_bytes(b"garbage")
    again = extract_features([FileSource(good[0])], f, cache=cache)
    assert again.n_computed == 1 and np.array_equal(again.features, ref)


@pytest.mark.slow
def test_two_workers_give_the_same_features_as_one(sound_folder, tmp_path_factory):
    _, good = sound_folder
    sources = [FileSource(p) for p in good] * 3
    f = make_extractor("scat1d", J=8, Q=4)
    one = extract_features(sources, f, cache=FeatureCache(tmp_path_factory.mktemp("a")))
    two = extract_features(sources, f, cache=FeatureCache(tmp_path_factory.mktemp("b")),
                           n_jobs=2, chunk_size=2)
    np.testing.assert_allclose(one.features, two.features, rtol=1e-5, atol=1e-6)
