"""Small multitrack songs synthesised from tones and noise, for tests and ``--quick`` runs.

Each song has its own tempo, key and timbres: ``drums`` (noise bursts on the beats, filtered
to a band of the song's), ``bass`` (a low sine on the root), ``piano`` (decaying triads) and
``guitar`` (plucked fifths, a sawtooth); ``mix`` is their sum. Everything follows from the
seed and the song's number, so songs are identifiable by each instrument alone.

>>> songs = synthetic_multitrack(2, seconds=4.0, sr=8000, seed=0)
>>> sorted(songs[0]), songs[0]["mix"].shape
(['bass', 'drums', 'guitar', 'mix', 'piano'], (32000,))
"""

from __future__ import annotations

import numpy as np

__all__ = ["synthetic_multitrack"]


def _notes(t: np.ndarray, beat: float, freq: float, decay: float, wave) -> np.ndarray:
    phase = np.mod(t, beat)
    return wave(2 * np.pi * freq * t) * np.exp(-phase / decay)


def synthetic_song(number: int, seconds: float, sr: int, seed: int) -> dict[str, np.ndarray]:
    """One song's stems and mix (float32, mono)."""
    rng = np.random.default_rng([seed, number])
    t = np.arange(int(seconds * sr)) / sr
    beat = 60.0 / rng.uniform(70, 160)
    root = 55.0 * 2 ** (rng.integers(0, 12) / 12)
    noise = rng.standard_normal(len(t))
    band = rng.uniform(0.2, 1.0)
    drums = np.convolve(noise, np.ones(max(1, int(4 / band))) / int(4 / band), "same")
    drums = drums * np.exp(-np.mod(t, beat / 2) / 0.03)
    bass = _notes(t, beat, root, 0.3, np.sin)
    third = 2 ** ((3 + rng.integers(0, 2)) / 12)
    piano = sum(_notes(t, 2 * beat, 4 * root * r, 0.5, np.sin) for r in (1, third, 1.5))
    saw = lambda x: 2 * (np.mod(x / (2 * np.pi), 1) - 0.5)  # noqa: E731
    guitar = _notes(t, beat / 2, 2 * root * rng.choice([1.5, 2.0]), 0.1, saw)
    stems = {"drums": 0.3 * drums, "bass": 0.3 * bass, "piano": 0.1 * piano,
             "guitar": 0.1 * guitar}
    stems = {k: v.astype(np.float32) for k, v in stems.items()}
    stems["mix"] = sum(stems.values()).astype(np.float32)
    return stems


def synthetic_multitrack(n_songs: int, seconds: float = 20.0, sr: int = 22050, seed: int = 0
                         ) -> list[dict[str, np.ndarray]]:
    """``n_songs`` songs, each ``{"drums", "bass", "piano", "guitar", "mix"}``."""
    if n_songs < 1 or seconds <= 0:
        raise ValueError(f"need at least one song of positive length, got {n_songs}, {seconds}")
    return [synthetic_song(i, seconds, sr, seed) for i in range(n_songs)]
