"""Synthetic sounds for tests: harmonic tones whose timbre (number of harmonics) is the label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22050

#: label -> number of harmonics
TIMBRES = (("dull", 1), ("mellow", 4), ("bright", 30))


def harmonic_tone(freq: float, n_harmonics: int, seed: int) -> np.ndarray:
    """One second of a harmonic tone (1/h amplitudes) over a faint seeded noise floor."""
    t = np.arange(SR) / SR
    y = sum(np.sin(2 * np.pi * freq * (h + 1) * t) / (h + 1) for h in range(n_harmonics))
    noise = np.random.default_rng(seed).standard_normal(SR) * 1e-3
    return (0.3 * y / np.abs(y).max() + noise).astype(np.float32)


def write_timbre_library(root: Path, n_pitches: int, name: str = "{label} {i}.wav") -> Path:
    """One sub-folder per timbre, ``n_pitches`` tones from 200 to 260 Hz in each."""
    for label, n_h in TIMBRES:
        (root / label).mkdir(parents=True)
        for i, f in enumerate(np.geomspace(200, 260, n_pitches)):
            sf.write(str(root / label / name.format(label=label, i=i)), harmonic_tone(f, n_h, i), SR)
    return root


def write_groupings_file(library: Path, path: Path) -> Path:
    """Two listeners' groupings of a timbre library's sounds: one by timbre, one lumping the
    two richer timbres together."""
    from mirsim.datasets import load_collection

    items = load_collection(str(library)).items
    lumped = {"dull": "a", "mellow": "b", "bright": "b"}
    rows = ["listener,fname,cluster"]
    rows += [f"by-timbre,{i},{lab}" for i, lab in zip(items["id"], items["label"])]
    rows += [f"lumper,{i},{lumped[lab]}" for i, lab in zip(items["id"], items["label"])]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path
