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


# -- the multi-input network's time-frequency inputs -------------------------------------------
def _song(seconds=3.0, bpm=120.0, freq=220.0):
    """Clicks at ``bpm`` over a harmonic tone: a beat and a pitch class to find."""
    y = _harmonic(freq, seconds=seconds)
    period = int(round(60.0 / bpm * SR))
    for start in range(0, len(y), period):
        y[start:start + 200] += 0.5 * np.hanning(200).astype(np.float32)
    return y


def test_multi_input_matrix_shapes_share_one_time_axis():
    f = make_extractor("multi-input")
    m = f.matrix(f.prepare(_song(), SR))
    assert f.layout() == {"mel": 128, "tempogram": 32, "chroma": 16} and m.shape == (176, 256)
    mel, tempo, chroma = m[:128], m[128:160], m[160:]
    assert abs(mel.mean()) < 1e-4 and abs(mel.std() - 1.0) < 0.02  # z-scored over the segment
    assert (chroma[12:] == 0).all() and chroma[:12].max() > 0  # 12 CENS bins, zero-padded
    assert np.isfinite(tempo).all() and tempo.min() >= 0
    assert np.argmax(chroma[:12].mean(axis=1)) == 9  # 220 Hz is an A
    x = f(_song(), SR)
    assert x.shape == (176 * 256,) and np.array_equal(x.reshape(176, 256), m.astype(np.float32))
    mel_only = make_extractor("multi-input", inputs=("mel",))
    assert mel_only(_song(), SR).shape == (128 * 256,)


def test_cyclic_tempogram_folds_octaves_of_one_tempo_together():
    from mirsim.features.multi_input import cyclic_tempogram

    a = cyclic_tempogram(_song(seconds=6.0, bpm=100.0), SR, 256, 384, 16).mean(axis=1)
    b = cyclic_tempogram(_song(seconds=6.0, bpm=200.0), SR, 256, 384, 16).mean(axis=1)
    assert abs(int(np.argmax(a)) - int(np.argmax(b))) in (0, 1, 15)  # one bin, cyclically


def test_multi_input_parameters_are_checked_in_one_line():
    from mirsim.errors import MirsimError

    for bad in ({"inputs": ("mel", "mfcc")}, {"inputs": ("mel", "mel")}, {"chroma_rows": 8},
                {"hop_length": 100}, {"n_frames": 400}, {"tuning": 2.0}):
        with pytest.raises(MirsimError) as err:
            make_extractor("multi-input", **bad)
        assert "\n" not in str(err.value)


_CHROMA_SCRIPT = """
import numpy as np, librosa
y = np.random.default_rng(0).standard_normal(3 * 22050).astype(np.float32)
print(librosa.feature.chroma_cens(y=y, sr=22050, hop_length=256{tuning}).shape)
"""


@pytest.mark.parametrize("tuning", ["", ", tuning=0.0"])
def test_chroma_cens_runs_cleanly_in_a_fresh_process(tuning):
    # librosa.feature.chroma_cens once died here with a segmentation fault: numba's on-disk
    # cache of librosa.core.pitch, written by four processes at once, mapped a signature to
    # another signature's machine code, and the tuning estimate (piptrack's parabolic
    # interpolation) ran it. A fresh process loads the installed cache as any worker would:
    # a corrupt cache fails this test (exit -11) instead of killing a worker pool.
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _CHROMA_SCRIPT.format(tuning=tuning)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip() == "(12, 259)"


def test_multi_input_extracts_in_worker_processes(tmp_path, tmp_path_factory):
    paths = []
    for i, bpm in enumerate((90.0, 120.0, 150.0)):
        paths.append(tmp_path / f"song{i}.wav")
        sf.write(str(paths[-1]), _song(bpm=bpm, freq=220.0 * (i + 1)), SR)
    sources = [FileSource(p) for p in paths]
    f = make_extractor("multi-input", n_mels=32, tempo_bins=8)
    one = extract_features(sources, f, cache=FeatureCache(tmp_path_factory.mktemp("a")))
    two = extract_features(sources, f, cache=FeatureCache(tmp_path_factory.mktemp("b")),
                           n_jobs=2, chunk_size=1)
    assert not one.skipped and not two.skipped and one.features.shape == (3, 56 * 256)
    np.testing.assert_allclose(one.features, two.features, rtol=1e-5, atol=1e-5)
