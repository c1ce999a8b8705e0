"""Tempo and key estimation (:mod:`mirsim.features.tempo_key`) on sounds whose tempo and key
are known by construction."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import soundfile as sf

from mirsim.audio import FileSource
from mirsim.datasets.dimensions import parse_key
from mirsim.features.extraction import FeatureCache
from mirsim.features.tempo_key import (estimate_key, estimate_tempo, estimated_tempo_key,
                                       key_name, key_scores)

SR = 22050


def _progression(tonic: int, minor: bool, seconds: float = 1.0) -> np.ndarray:
    """i/I - iv/IV - V - i/I as sine triads on ``tonic`` (MIDI pitch of the tonic)."""
    t = np.arange(int(SR * seconds)) / SR
    third = 3 if minor else 4
    chords = [(0, third, 7), (5, 5 + third, 12), (7, 11, 14), (0, third, 7)]
    return np.concatenate([sum(np.sin(2 * np.pi * librosa.midi_to_hz(tonic + i) * t)
                               for i in chord) for chord in chords]).astype(np.float32)


@pytest.mark.parametrize("tonic", [57, 60, 62, 66, 70])
@pytest.mark.parametrize("minor", [False, True])
def test_the_key_of_a_cadence_is_found_in_every_tonic_and_mode(tonic, minor):
    want = key_name(tonic % 12 + (12 if minor else 0))
    assert estimate_key(_progression(tonic, minor), SR) == want


def test_key_scores_peak_at_each_rotated_profile():
    from mirsim.features.tempo_key import KRUMHANSL_MAJOR, KRUMHANSL_MINOR

    for k in range(12):
        assert int(np.argmax(key_scores(np.roll(KRUMHANSL_MAJOR, k)))) == k
        assert int(np.argmax(key_scores(np.roll(KRUMHANSL_MINOR, k)))) == 12 + k
    assert not key_scores(np.ones(12)).any()  # a flat chroma matches no key


@pytest.mark.parametrize("bpm", [90.0, 120.0, 140.0])
def test_the_tempo_of_a_click_track_is_found_within_the_tempo_rule(bpm):
    y = np.zeros(SR * 10, dtype=np.float32)
    for onset in np.arange(0, 10, 60.0 / bpm):
        y[int(onset * SR):][:200] = 1.0
    est = estimate_tempo(y, SR)
    assert min(abs(est - bpm), abs(est - 2 * bpm), abs(2 * est - bpm)) <= 5.0


def test_estimates_of_files_are_cached_and_a_bad_file_is_skipped(tmp_path):
    sf.write(tmp_path / "amin.wav", _progression(57, True), SR)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF not really")
    cache = FeatureCache(tmp_path / "cache")
    sources = [FileSource(tmp_path / "amin.wav"), FileSource(tmp_path / "corrupt.wav")]
    tempi, keys, skipped = estimated_tempo_key(sources, cache=cache)
    assert parse_key(keys[0]) == parse_key("A minor") and keys[1] is None and tempi[1] is None
    assert len(skipped) == 1 and "corrupt.wav" in str(skipped[0])
    again = estimated_tempo_key(sources[:1], cache=cache)
    assert again[1] == keys[:1]
