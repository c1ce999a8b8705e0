"""Run the original musicnn (TensorFlow) on a few synthetic clips and store its outputs as the
reference that mirsim's PyTorch port is tested against (``tests/test_musicnn.py``).

TensorFlow is never a dependency of mirsim: this script runs once, in a throwaway environment.
To regenerate ``tests/fixtures/musicnn/reference.npz``::

    python -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install tensorflow-cpu tf-keras librosa soundfile
    /tmp/tfenv/bin/pip install --no-deps musicnn==0.1.0
    /tmp/tfenv/bin/python scripts/make_musicnn_fixture.py

(tf-keras must have the same minor version as tensorflow-cpu; measured with 2.21.)

musicnn 0.1.0 was written for TensorFlow 1. The only shim it needs under TensorFlow 2 is in
this script: graph mode (``tf.compat.v1.disable_v2_behavior``) and ``TF_USE_LEGACY_KERAS=1``,
which makes ``tf.compat.v1.layers`` (removed with Keras 3) come from the ``tf-keras`` package.

The clips are generated deterministically here (plucked tones, a drum pattern with a bass
line, a noisy chord), 16 kHz 16-bit, at levels where the original's float16 log-mel does not
overflow (see ``mirsim.features.musicnn.pipeline``). The fixture holds, per clip: the audio
(int16), the original's input patches (float16, as it computes them), and for each of the
four models the per-patch tag probabilities and embeddings from a run of the package's graph
(``musicnn.models``) restored from its checkpoint, cross-checked against the package's public
``extractor`` function.
"""


from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf.compat.v1.layers from tf-keras
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # plain Eigen kernels: a stable reference

import numpy as np
import soundfile as sf
import tensorflow as tf

tf.compat.v1.disable_v2_behavior()

import musicnn
from musicnn import configuration, extractor, models

SR = 16000
MODELS = ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg")
OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "musicnn" / "reference.npz"


def _envelope(n: int, attack: int, decay_s: float) -> np.ndarray:
    t = np.arange(n) / SR
    env = np.exp(-t / decay_s)
    env[:attack] *= np.linspace(0.0, 1.0, attack)
    return env


def _pluck(freq: float, seconds: float, n_harmonics: int = 12) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    tone = sum(np.sin(2 * np.pi * freq * h * t) / h ** 1.3 for h in range(1, n_harmonics + 1))
    return tone * _envelope(len(t), 80, 0.35)


def clip_tones() -> np.ndarray:
    """3.2 s: an arpeggio of plucked harmonic tones."""
    y = np.zeros(int(3.2 * SR))
    for i, freq in enumerate((220.0, 277.2, 329.6, 440.0, 329.6, 277.2)):
        start = int(i * 0.5 * SR)
        note = _pluck(freq, 0.9)[: len(y) - start]
        y[start:start + len(note)] += note
    return y


def clip_drums() -> np.ndarray:
    """6.1 s: kick, snare and hi-hat at 120 bpm over a bass line (two 3 s patches)."""
    rng = np.random.default_rng(5)
    y = np.zeros(int(6.1 * SR))
    beat = SR // 2
    t = np.arange(int(0.3 * SR)) / SR
    kick = np.sin(2 * np.pi * (50 + 80 * np.exp(-t / 0.03)) * t) * np.exp(-t / 0.12)
    snare = rng.standard_normal(len(t)) * np.exp(-t / 0.06) * 0.6
    hat = np.diff(rng.standard_normal(int(0.05 * SR) + 1)) * np.exp(-np.arange(int(0.05 * SR)) / 200)
    for b in range(len(y) // beat):
        s = b * beat
        for start, sound in ((s, kick if b % 2 == 0 else snare), (s + beat // 2, hat * 0.3)):
            n = min(len(sound), len(y) - start)
            if n > 0:
                y[start:start + n] += sound[:n]
        bass = _pluck((55.0, 55.0, 73.4, 82.4)[b % 4], 0.45, n_harmonics=6)
        n = min(len(bass), len(y) - s)
        y[s:s + n] += 0.8 * bass[:n]
    return y


def clip_noisy_chord() -> np.ndarray:
    """3.1 s: a sustained major chord with slow vibrato over coloured noise."""
    rng = np.random.default_rng(7)
    t = np.arange(int(3.1 * SR)) / SR
    vib = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * t)
    chord = sum(np.sin(2 * np.pi * f * vib * t * h) / h for f in (261.6, 329.6, 392.0)
                for h in range(1, 6))
    noise = np.convolve(rng.standard_normal(len(t)), np.ones(8) / 8, mode="same")
    return chord * np.minimum(1.0, t / 0.2) + 2.0 * noise


CLIPS = {"tones": clip_tones, "drums": clip_drums, "noisy_chord": clip_noisy_chord}


def to_int16(y: np.ndarray, peak: float = 0.1) -> np.ndarray:
    """Peak-normalise to ``peak`` (well below the level where the float16 log-mel overflows)."""
    return np.round(y / np.abs(y).max() * peak * 32767).astype(np.int16)


def run_graph(model: str, patches: np.ndarray) -> dict[str, np.ndarray]:
    """The original graph (musicnn.models) restored from the package, on all patches at once."""
    labels = configuration.MTT_LABELS if model.startswith("MTT") else configuration.MSD_LABELS
    tf.compat.v1.reset_default_graph()
    x = tf.compat.v1.placeholder(tf.float32, [None, patches.shape[1], configuration.N_MELS])
    is_training = tf.compat.v1.placeholder(tf.bool)
    out = models.define_model(x, is_training, model, len(labels))
    fetch = {"tags": tf.nn.sigmoid(out[0])}
    if "vgg" in model:
        fetch["penultimate"] = tf.compat.v1.layers.flatten(out[5])
    else:
        fetch.update(penultimate=out[8], mean_pool=out[6], max_pool=out[7])
    with tf.compat.v1.Session() as sess:
        saver = tf.compat.v1.train.Saver()
        saver.restore(sess, str(Path(musicnn.__file__).parent / model) + "/")  # raises if absent
        return sess.run(fetch, feed_dict={x: patches.astype(np.float32), is_training: False})


def run_package(model: str, path: str) -> dict[str, np.ndarray]:
    """The package's public ``extractor`` function (batches of one patch)."""
    taggram, _, feats = extractor.extractor(path, model=model, input_length=3,
                                            extract_features=True)
    out = {"tags": np.asarray(taggram)}
    if "vgg" in model:
        pool5 = np.asarray(feats["pool5"]).reshape(len(taggram), -1)
        out["penultimate"] = pool5
    else:
        for key in ("penultimate", "mean_pool", "max_pool"):
            out[key] = np.asarray(feats[key])
    return out


def main() -> None:
    arrays: dict[str, np.ndarray] = {}
    n_frames = 187  # librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1
    with tempfile.TemporaryDirectory() as tmp:
        for clip, make in CLIPS.items():
            audio = to_int16(make())
            path = os.path.join(tmp, f"{clip}.wav")
            sf.write(path, audio, SR, subtype="PCM_16")
            patches, _ = extractor.batch_data(path, n_frames, n_frames)  # the original pipeline
            assert np.isfinite(patches).all(), f"{clip}: float16 overflow in the original input"
            arrays[f"audio__{clip}"] = audio
            arrays[f"patches__{clip}"] = patches
            for model in MODELS:
                direct = run_graph(model, patches)
                package = run_package(model, path)
                for key, value in direct.items():
                    # the package's extractor loop keeps the first patch's penultimate (and
                    # cnn1-3) for every later patch, a bug of its own: compare patch 0 there
                    rows = 1 if key == "penultimate" and "vgg" not in model else len(value)
                    gap = float(np.abs(package[key][:rows] - value[:rows]).max())
                    assert gap < 1e-5, f"{model} {clip} {key}: package vs graph differ by {gap}"
                    arrays[f"{model}__{clip}__{key}"] = value.astype(np.float32)
                print(f"{clip} {model}: {patches.shape[0]} patches, top tag index "
                      f"{int(package['tags'].mean(0).argmax())}", file=sys.stderr)
    meta = {"tensorflow": tf.__version__, "numpy": np.__version__,
            "librosa": __import__("librosa").__version__, "musicnn": "0.1.0",
            "sample_rate": SR, "clips": list(CLIPS), "models": list(MODELS)}
    arrays["meta"] = np.array(json.dumps(meta))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
