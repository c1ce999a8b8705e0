"""Reading audio: good files of each kind, and a clear error naming the file for each bad one."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import soundfile as sf

from mirsim.audio import AudioError, FileSource, fit_length, load_audio


def _tone(path, sr=16000, seconds=1.0, freq=440.0, fmt=None, subtype=None):
    t = np.arange(int(sr * seconds)) / sr
    sf.write(str(path), 0.5 * np.sin(2 * np.pi * freq * t), sr, format=fmt, subtype=subtype)
    return path


@pytest.mark.parametrize("suffix", ["wav", "flac", "ogg", "aiff"])
def test_reads_common_formats_resampled_to_target_rate(tmp_path, suffix):
    path = _tone(tmp_path / f"tone.{suffix}")
    y = load_audio(path, sr=8000)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 8000) <= 2
    assert 0.4 < np.abs(y).max() < 0.6


def test_reads_mp3_from_cyberlioz(cyberlioz_dir):
    y = load_audio(cyberlioz_dir / "audio" / "Fl-ord-C4-mf.mp3", sr=22050, duration=1.0)
    assert y.shape == (22050,)
    assert np.abs(y).max() > 0.01


def test_stereo_is_mixed_to_mono(tmp_path):
    left = np.ones(1000) * 0.5
    sf.write(str(tmp_path / "st.wav"), np.stack([left, -left * 0.5], axis=1), 8000)
    y = load_audio(tmp_path / "st.wav", sr=8000)
    assert y.shape == (1000,) and np.allclose(y, 0.125, atol=1e-4)


def test_duration_and_offset_read_only_what_is_asked(tmp_path):
    sr = 8000
    ramp = np.linspace(-1, 1, 4 * sr, endpoint=False) * 0.9
    sf.write(str(tmp_path / "ramp.wav"), ramp, sr, subtype="FLOAT")
    y = load_audio(tmp_path / "ramp.wav", sr=sr, duration=0.5, offset=1.0)
    assert y.shape == (4000,)
    assert np.allclose(y, ramp[sr:sr + 4000], atol=1e-6)


@pytest.mark.parametrize("make, reason", [
    (lambda p: None, "no such file"),
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_text("this is not audio, just text\n" * 20), "not a readable sound file"),
    (lambda p: p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4),
     "not a readable sound file"),
])
def test_bad_files_raise_an_error_naming_the_file(tmp_path, make, reason):
    path = tmp_path / "bad file ü.wav"
    make(path)
    with pytest.raises(AudioError) as info:
        load_audio(path)
    assert str(path) in str(info.value) and reason in str(info.value)


def test_truncated_file_is_reported(tmp_path):
    good = _tone(tmp_path / "good.wav")
    data = good.read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:30])  # header cut in the middle
    with pytest.raises(AudioError, match="cut.wav"):
        load_audio(tmp_path / "cut.wav")


def test_silent_and_non_finite_files(tmp_path):
    sf.write(str(tmp_path / "silent.wav"), np.zeros(800), 8000)
    with pytest.raises(AudioError, match="silent"):
        load_audio(tmp_path / "silent.wav", sr=8000)
    assert load_audio(tmp_path / "silent.wav", sr=8000, allow_silent=True).shape == (800,)
    x = np.ones(800, dtype=np.float32) * 0.1
    x[10] = np.nan
    sf.write(str(tmp_path / "nan.wav"), x, 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match="non-finite"):
        load_audio(tmp_path / "nan.wav", sr=8000)


def test_file_source_key_is_the_content_hash(tmp_path):
    path = _tone(tmp_path / "a.wav")
    src = FileSource(path)
    assert src.key == hashlib.sha256(path.read_bytes()).hexdigest()
    renamed = path.rename(tmp_path / "b.wav")
    assert FileSource(renamed).key == src.key


def test_fit_length_crops_and_pads():
    y = np.arange(5, dtype=np.float32)
    assert fit_length(y, 3).tolist() == [0, 1, 2]
    assert fit_length(y, 7).tolist() == [0, 1, 2, 3, 4, 0, 0]
