"""Augmented views of sounds (mirsim.features.views): deterministic, cached, skipped with a
reason when a sound cannot be read, and accepted by the extractors."""

from __future__ import annotations

import random

import numpy as np
import pytest
import soundfile as sf

from mirsim.audio import FileSource
from mirsim.features import make_extractor
from mirsim.features.extraction import FeatureCache, extract_features
from mirsim.features.views import AugmentedSource, ViewAugmentation, extract_views
from synthetic_audio import SR, harmonic_tone


@pytest.fixture
def sounds(tmp_path):
    """Three tones and an empty file."""
    paths = []
    for i, (f, h) in enumerate([(200, 1), (230, 4), (260, 30)]):
        paths.append(tmp_path / f"t{i}.wav")
        sf.write(paths[-1], harmonic_tone(f, h, i), SR)
    (tmp_path / "empty.wav").write_bytes(b"")
    return [FileSource(p) for p in [*paths, tmp_path / "empty.wav"]]


def test_views_are_deterministic_cached_and_skip_bad_files(sounds, tmp_path):
    mfcc, aug = make_extractor("mfcc"), ViewAugmentation(p_augment=1.0)
    cache = FeatureCache(tmp_path / "cache")
    first = extract_views(sounds, mfcc, aug, 3, seed=0, cache=cache)
    assert first.features.shape == (3, 3, 40) and first.ok.tolist() == [0, 1, 2]
    assert first.skipped == [(3, sounds[3].name, "empty file (0 bytes)")]
    assert first.n_computed == 9 and first.n_cached == 0
    again = extract_views(sounds, mfcc, aug, 3, seed=0, cache=cache)
    assert again.n_computed == 0 and again.n_cached == 9
    np.testing.assert_array_equal(again.features, first.features)
    fresh = extract_views(sounds, mfcc, aug, 3, seed=0, cache=FeatureCache(tmp_path / "other"))
    np.testing.assert_array_equal(fresh.features, first.features)  # computed again: the same
    clean = extract_features(sounds[:3], mfcc, cache=cache).features
    for j in range(3):  # each view differs from the sound and from the other views
        assert not np.allclose(first.features[:, j], clean)
        assert not np.allclose(first.features[:, j], first.features[:, (j + 1) % 3])


def test_the_cache_key_holds_the_parameters_the_view_and_the_seed(sounds, tmp_path):
    mfcc, cache = make_extractor("mfcc"), FeatureCache(tmp_path / "cache")
    base = extract_views(sounds[:2], mfcc, ViewAugmentation(), 1, seed=0, cache=cache)
    other_seed = extract_views(sounds[:2], mfcc, ViewAugmentation(), 1, seed=1, cache=cache)
    other_aug = extract_views(sounds[:2], mfcc, ViewAugmentation(gain_db=7.0), 1, seed=0,
                              cache=cache)
    assert other_seed.n_computed == 2 and other_aug.n_computed == 2
    assert not np.allclose(base.features, other_seed.features)
    identities = {p.name for p in (tmp_path / "cache").iterdir()}
    assert len(identities) == 3 and all(i.startswith(mfcc.identity + "-view-")
                                        for i in identities)


def test_a_view_depends_on_the_sound_not_on_its_position(sounds, tmp_path):
    mfcc, aug = make_extractor("mfcc"), ViewAugmentation(p_augment=1.0)
    forward = extract_views(sounds[:3], mfcc, aug, 2, cache=FeatureCache(tmp_path / "a"))
    backward = extract_views(sounds[:3][::-1], mfcc, aug, 2, cache=FeatureCache(tmp_path / "b"))
    np.testing.assert_array_equal(forward.features, backward.features[::-1])


def test_augmentation_leaves_the_callers_random_generators_alone():
    random.seed(5)
    np.random.seed(5)
    expected = (random.random(), np.random.random())
    random.seed(5)
    np.random.seed(5)
    ViewAugmentation(p_augment=1.0).apply(harmonic_tone(220, 4, 0), SR, seed=3)
    assert (random.random(), np.random.random()) == expected


@pytest.mark.parametrize("feature", ["mfcc", "musicnn-msd"])  # pads to 1 s / crops to 3 s
def test_views_of_short_and_long_sounds_go_through_the_extractors_prepare(feature):
    from mirsim.errors import MirsimError

    try:
        extractor = make_extractor(feature)
    except MirsimError as exc:  # musicnn's checkpoints not installed
        pytest.skip(str(exc))
    n = round(extractor.duration * extractor.sample_rate)

    class Tone:
        name, key = "tone", "cafe"

        def __init__(self, seconds):
            self.seconds = seconds

        def load(self, sr, duration=None):
            t = np.arange(int(min(self.seconds, duration or 9) * sr)) / sr
            return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)

    for seconds in (0.1, 5.0):  # shorter than what the extractor analyses, and longer
        view = AugmentedSource(Tone(seconds), ViewAugmentation(max_offset=0.5, p_augment=1.0),
                               0, 0).load(extractor.sample_rate, extractor.duration)
        read = int(min(seconds, extractor.duration + 0.5) * extractor.sample_rate)
        assert read // 2 <= len(view) <= read  # the crop keeps at least half of what was read
        assert np.all(np.isfinite(view)) and view.dtype == np.float32
        prepared = extractor.prepare(view, extractor.sample_rate)
        assert len(prepared) == n if feature == "mfcc" else len(prepared) <= n
        assert np.all(np.isfinite(extractor(view, extractor.sample_rate)))
