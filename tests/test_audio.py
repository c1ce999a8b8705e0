"""Reading audio: good files of each kind, and a clear error naming the file for each bad one."""

from __future__ import annotations

import hashlib
import os

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


# --- truncated and corrupt files: the reason says so, the decoder's own lines stay quiet ------

DECODER_NOISE = ("mpg123", "Note: ", "Cannot read next header")


@pytest.fixture
def mp3_bytes(cyberlioz_dir) -> bytes:
    return (cyberlioz_dir / "audio" / "Fl-ord-C4-mf.mp3").read_bytes()


@pytest.mark.parametrize("n_bytes", [100, 300, 417])
def test_truncated_mp3_is_reported_as_such_without_decoder_lines(tmp_path, capfd, mp3_bytes,
                                                                 n_bytes):
    path = tmp_path / "cut.mp3"
    path.write_bytes(mp3_bytes[:n_bytes])  # the tag and part of the first frame
    with pytest.raises(AudioError) as info:
        load_audio(path)
    assert info.value.reason.startswith("truncated or corrupt MP3: ")
    assert "does not exist" not in str(info.value) and str(path) in str(info.value)
    err = capfd.readouterr().err
    assert not any(noise in err for noise in DECODER_NOISE), err


def test_mp3_corrupt_in_the_middle_is_reported_without_decoder_lines(tmp_path, capfd, mp3_bytes):
    data = bytearray(mp3_bytes)
    data[3000:60000] = bytes(57000)  # a long run of zeros: the decoder gives up
    path = tmp_path / "zeros.mp3"
    path.write_bytes(bytes(data))
    with pytest.raises(AudioError, match="truncated or corrupt MP3: decoding failed"):
        load_audio(path)
    err = capfd.readouterr().err
    assert not any(noise in err for noise in DECODER_NOISE), err


def test_mp3_with_a_damaged_frame_still_reads_quietly(tmp_path, capfd, mp3_bytes):
    data = bytearray(mp3_bytes)
    data[20000:20200] = np.random.default_rng(0).integers(0, 256, 200, dtype=np.uint8).tobytes()
    path = tmp_path / "scratched.mp3"
    path.write_bytes(bytes(data))
    assert load_audio(path, sr=22050).shape[0] > 22050  # the decoder resyncs after the damage
    err = capfd.readouterr().err
    assert not any(noise in err for noise in DECODER_NOISE), err


def test_text_named_mp3_is_not_called_a_truncated_mp3(tmp_path, capfd):
    path = tmp_path / "notes.mp3"
    path.write_text("this is not audio, just text\n" * 20)
    with pytest.raises(AudioError) as info:
        load_audio(path)
    assert info.value.reason.startswith("not a readable sound file")
    assert "does not exist" not in info.value.reason and "MP3" not in info.value.reason
    assert not any(noise in capfd.readouterr().err for noise in DECODER_NOISE)


def test_truncated_flac_is_reported_as_truncated(tmp_path):
    good = _tone(tmp_path / "good.flac")
    data = good.read_bytes()
    (tmp_path / "cut.flac").write_bytes(data[:len(data) // 2])
    with pytest.raises(AudioError, match="cut.flac: truncated or corrupt FLAC: decoding failed"):
        load_audio(tmp_path / "cut.flac")


def test_other_writes_to_stderr_during_a_decode_are_kept(capfd):
    from mirsim.audio import quiet_decoder

    with quiet_decoder() as messages:
        os.write(2, b"[src/libmpg123/parse.c:f():1] warning: decoder talk\n")
        os.write(2, b"a progress bar or a warning of another thread\n")
    err = capfd.readouterr().err
    assert err == "a progress bar or a warning of another thread\n"
    assert messages == ["[src/libmpg123/parse.c:f():1] warning: decoder talk"]


def test_decodes_in_threads_keep_their_reasons_and_lose_no_other_output(tmp_path, capfd,
                                                                        mp3_bytes):
    from concurrent.futures import ThreadPoolExecutor

    (tmp_path / "cut.mp3").write_bytes(mp3_bytes[:300])
    (tmp_path / "good.mp3").write_bytes(mp3_bytes)

    def decode(i: int) -> str:
        os.write(2, f"line {i}\n".encode())
        try:
            load_audio(tmp_path / ("cut.mp3" if i % 2 else "good.mp3"), duration=0.5)
            return "ok"
        except AudioError as exc:
            return exc.reason

    with ThreadPoolExecutor(4) as pool:
        reasons = list(pool.map(decode, range(40)))
    assert reasons[::2] == ["ok"] * 20
    assert all(r.startswith("truncated or corrupt MP3") for r in reasons[1::2])
    err = capfd.readouterr().err
    assert sorted(err.splitlines()) == sorted(f"line {i}" for i in range(40))
