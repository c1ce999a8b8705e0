"""musicnn ported to PyTorch: the TF checkpoint reader, the port against the original's outputs
(``tests/fixtures/musicnn/reference.npz``, made by ``scripts/make_musicnn_fixture.py`` with
TensorFlow), the ``musicnn-msd`` / ``musicnn-mtt`` features, and ``mirsim tag``.

Tests that need the checkpoints skip when the ``musicnn`` package is not installed
(``pip install --no-deps musicnn==0.1.0``; ``scripts/dev.sh`` installs it).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from mirsim.audio import FileSource
from mirsim.cli import app as mirsim_app
from mirsim.errors import MirsimError, UnknownNameError
from mirsim.features import make_extractor
from mirsim.features.extraction import FeatureCache, extract_features
from mirsim.features.musicnn import (
    CheckpointError,
    CheckpointReader,
    MusicnnNotFoundError,
    find_checkpoint,
    load_network,
)
from mirsim.features.musicnn import weights as weights_module
from mirsim.features.musicnn.checkpoint import TensorEntry
from mirsim.features.musicnn.extractor import model_outputs, run_network
from mirsim.features.musicnn.pipeline import PATCH_FRAMES, audio_patches, log_mel
from mirsim.features.musicnn.tags import MSD_TAGS, MTT_TAGS

FIXTURE = Path(__file__).parent / "fixtures" / "musicnn" / "reference.npz"
MODELS = ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg")
CLIPS = ("tones", "drums", "noisy_chord")
TOL = 1e-4


def _installed() -> bool:
    try:
        find_checkpoint("MSD_musicnn")
        return True
    except MusicnnNotFoundError:
        return False


needs_checkpoints = pytest.mark.skipif(
    not _installed(), reason="musicnn checkpoints not installed "
                             "(pip install --no-deps musicnn==0.1.0)")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as data:
        return {k: data[k] for k in data.files}


def _audio(reference, clip: str) -> np.ndarray:
    return reference[f"audio__{clip}"].astype(np.float32) / 32768


def _tone(seconds: float, sr: int = 22050, amplitude: float = 0.05) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    y = sum(np.sin(2 * np.pi * 330 * h * t) / h for h in range(1, 9)) * np.exp(-(t % 1.0) * 3)
    return (amplitude * y / np.abs(y).max()).astype(np.float32)


# --- the checkpoint reader -----------------------------------------------------------------

@needs_checkpoints
def test_reader_lists_tensors_with_names_shapes_and_dtypes():
    r = CheckpointReader(find_checkpoint("MTT_musicnn"))
    assert r.num_shards == 1
    e = r.entries["conv2d_5/kernel"]  # the first mid-end conv: 7 frames x 561 channels -> 64
    assert isinstance(e, TensorEntry) and e.shape == (7, 561, 1, 64)
    assert e.dtype == np.float32 and e.size == 7 * 561 * 64 * 4
    assert r.entries["dense/kernel"].shape == (1506, 200)
    assert r.entries["batch_normalization_10/moving_variance"].shape == (200,)
    kernel = r.read("conv2d_5/kernel", verify=True)  # CRC32C checked, pure Python if need be
    assert kernel.shape == (7, 561, 1, 64) and np.isfinite(kernel).all()
    assert (r.read("batch_normalization_10/moving_variance") > 0).all()
    vgg = CheckpointReader(find_checkpoint("MSD_vgg"))
    assert vgg.entries["1CNN/kernel"].shape == (3, 3, 1, 128) and "dense/bias" in vgg


@pytest.fixture
def checkpoint_copy(tmp_path) -> Path:
    if not _installed():
        pytest.skip("musicnn checkpoints not installed (pip install --no-deps musicnn==0.1.0)")
    dest = tmp_path / "MTT_vgg"
    shutil.copytree(find_checkpoint("MTT_vgg"), dest)
    return dest


def test_reader_rejects_corrupt_index(checkpoint_copy):
    index = checkpoint_copy / ".index"
    data = bytearray(index.read_bytes())
    data[40] ^= 0xFF  # inside the first data block
    index.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        CheckpointReader(checkpoint_copy)


def test_reader_rejects_truncated_index(checkpoint_copy):
    index = checkpoint_copy / ".index"
    index.write_bytes(index.read_bytes()[:-20])
    with pytest.raises(CheckpointError, match="bad footer"):
        CheckpointReader(checkpoint_copy)
    index.write_bytes(b"")
    with pytest.raises(CheckpointError, match="not a TensorFlow checkpoint index"):
        CheckpointReader(checkpoint_copy)


def test_reader_rejects_truncated_or_corrupt_data(checkpoint_copy):
    data_file = checkpoint_copy / ".data-00000-of-00001"
    r = CheckpointReader(checkpoint_copy)
    last = max(r.entries.values(), key=lambda e: e.offset)
    raw = bytearray(data_file.read_bytes())
    raw[last.offset] ^= 0x01
    data_file.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="checksum mismatch.*" + last.name):
        r.read(last.name, verify=True)
    data_file.write_bytes(bytes(raw[:last.offset + 4]))
    with pytest.raises(CheckpointError, match="shorter"):
        r.read(last.name)
    data_file.unlink()
    with pytest.raises(CheckpointError, match="cannot read checkpoint data"):
        r.read(last.name)


def test_reader_errors_on_missing_files(tmp_path):
    with pytest.raises(CheckpointError, match="cannot read checkpoint index"):
        CheckpointReader(tmp_path)


# --- the port against the original (TensorFlow) ---------------------------------------------

def test_input_patches_are_the_originals_to_the_last_float16_step(reference):
    """Bit for bit on the machine that made the fixture (an Intel Xeon). The original rounds
    the mel power to float16, and the power's last float32 bits depend on the CPU's FFT and
    BLAS code paths, so on another CPU a value right at a float16 rounding boundary may land
    one float16 step away: measured on an AMD EPYC, 0.011-0.033 % of the elements, each
    exactly one step (at most 2.4e-4, 5e-4 relative)."""
    for clip in CLIPS:
        ours = audio_patches(_audio(reference, clip), 16000)
        theirs = reference[f"patches__{clip}"].astype(np.float32)
        assert ours.shape == theirs.shape and ours.shape[1:] == (PATCH_FRAMES, 96)
        differ = ours != theirs
        assert differ.mean() <= 1e-3, clip
        steps = np.abs(ours[differ].astype(np.float16).view(np.int16).astype(np.int32)
                       - theirs[differ].astype(np.float16).view(np.int16).astype(np.int32))
        assert steps.max(initial=0) <= 1, clip


@needs_checkpoints
@pytest.mark.parametrize("model", MODELS)
def test_port_matches_tensorflow(reference, model):
    for clip in CLIPS:
        ours = model_outputs(_audio(reference, clip), 16000, model)
        for key in ("tags", "penultimate"):
            theirs = reference[f"{model}__{clip}__{key}"]
            assert ours[key].shape == theirs.shape
            np.testing.assert_allclose(ours[key], theirs, rtol=0, atol=TOL, err_msg=f"{clip} {key}")
        for key in ("mean_pool", "max_pool"):  # values up to ~80: 1e-4 relative to magnitude
            if f"{model}__{clip}__{key}" in reference:
                theirs = reference[f"{model}__{clip}__{key}"]
                gap = np.abs(ours[key] - theirs) / np.maximum(1.0, np.abs(theirs))
                assert gap.max() <= TOL, f"{clip} {key}: {gap.max()}"
        top = MTT_TAGS if model.startswith("MTT") else MSD_TAGS
        assert top[ours["tags"].mean(0).argmax()] == top[
            reference[f"{model}__{clip}__tags"].mean(0).argmax()]


@needs_checkpoints
def test_feature_vector_is_the_mean_of_the_originals_patches(reference):
    y = _audio(reference, "drums")  # two patches
    for name, layer, dim in (("musicnn-msd", "penultimate", 200), ("musicnn-mtt", "tags", 50)):
        f = make_extractor(name, layer=layer, duration=None)
        model = f.model
        v = f(y, 16000)
        assert v.shape == (dim,)
        want = reference[f"{model}__drums__{layer}"].mean(axis=0)
        np.testing.assert_allclose(v, want, rtol=0, atol=TOL)
    pooled = make_extractor("musicnn-msd", layer="pooled", duration=None)(y, 16000)
    want = np.concatenate([reference[f"MSD_musicnn__drums__{k}"].mean(0)
                           for k in ("mean_pool", "max_pool")])
    assert pooled.shape == (1506,)
    assert (np.abs(pooled - want) / np.maximum(1, np.abs(want))).max() <= TOL


# --- the features ----------------------------------------------------------------------------

@needs_checkpoints
@pytest.mark.parametrize("name, params, dim", [
    ("musicnn-msd", {}, 200), ("musicnn-mtt", {}, 200),
    ("musicnn-msd", {"layer": "pooled"}, 1506), ("musicnn-mtt", {"layer": "tags"}, 50),
    ("musicnn-msd", {"architecture": "vgg"}, 256),
])
def test_feature_shapes_for_short_and_long_clips(name, params, dim):
    f = make_extractor(name, **params)
    short = f(_tone(0.4), 22050)  # 0.4 s: frames repeated to fill one 3 s patch
    long = f(_tone(10.0), 22050)  # default duration: the first 3 s
    assert short.shape == long.shape == (dim,)
    assert short.dtype == np.float32 and np.isfinite(short).all() and np.isfinite(long).all()
    whole = make_extractor(name, duration=None, **params)
    assert whole(_tone(10.0), 22050).shape == (dim,)  # three patches, averaged


@needs_checkpoints
def test_long_clips_are_analysed_patch_by_patch():
    f = make_extractor("musicnn-msd", duration=None)
    y = _tone(10.0, sr=16000)  # 626 frames: patches at 0, 187 and 374; the tail is dropped
    patches = audio_patches(y, 16000)
    assert patches.shape == (3, PATCH_FRAMES, 96)
    per_patch = run_network(load_network("MSD_musicnn"), patches)["penultimate"]
    np.testing.assert_allclose(f(y, 16000), per_patch.mean(0), atol=1e-5)
    first = make_extractor("musicnn-msd")(y, 16000)  # duration 3 s: the first patch only
    np.testing.assert_allclose(first, per_patch[0], atol=1e-5)


@needs_checkpoints
def test_loud_input_stays_finite_where_the_original_overflows():
    y = _tone(3.0, sr=16000, amplitude=0.9)
    spec = log_mel(y)
    assert np.isfinite(spec).all() and spec.max() > np.log10(65504)  # beyond float16's range
    assert np.isfinite(make_extractor("musicnn-msd")(y, 16000)).all()


@needs_checkpoints
def test_identity_names_model_and_layer():
    ids = {make_extractor(n, **p).identity for n, p in [
        ("musicnn-msd", {}), ("musicnn-mtt", {}), ("musicnn-msd", {"layer": "pooled"}),
        ("musicnn-msd", {"architecture": "vgg"}), ("musicnn-msd", {"duration": None})]}
    assert len(ids) == 5
    ident = make_extractor("musicnn-mtt", layer="tags").identity
    assert ident.startswith("musicnn-mtt-MTT_musicnn-tags-")
    assert ident == make_extractor("musicnn-mtt", layer="tags").identity


@needs_checkpoints
def test_bad_parameters_are_one_line_errors():
    with pytest.raises(MirsimError, match="layer must be one of: penultimate, pooled, tags"):
        make_extractor("musicnn-msd", layer="last")
    with pytest.raises(MirsimError, match="only for architecture 'musicnn'"):
        make_extractor("musicnn-mtt", layer="pooled", architecture="vgg")


@needs_checkpoints
def test_bulk_extraction_through_the_cache(tmp_path):
    paths = []
    for i, seconds in enumerate((0.5, 4.0)):
        p = tmp_path / f"s{i}.wav"
        sf.write(str(p), _tone(seconds), 22050)
        paths.append(p)
    f = make_extractor("musicnn-msd")
    cache = FeatureCache(tmp_path / "cache")
    first = extract_features([FileSource(p) for p in paths], f, cache=cache)
    again = extract_features([FileSource(p) for p in paths], f, cache=cache)
    assert first.features.shape == (2, 200) and not first.skipped
    assert again.n_cached == 2 and np.array_equal(first.features, again.features)
    np.testing.assert_allclose(first.features[1], f(sf.read(str(paths[1]))[0], 22050), atol=1e-5)


# --- missing checkpoints ---------------------------------------------------------------------

def test_missing_package_is_a_one_line_error_saying_how_to_install(monkeypatch):
    monkeypatch.delenv(weights_module.ENV_VAR, raising=False)
    monkeypatch.setattr(weights_module, "_package_dir", lambda: None)
    with pytest.raises(MusicnnNotFoundError) as info:
        make_extractor("musicnn-msd")
    message = str(info.value)
    assert "\n" not in message and "pip install --no-deps musicnn==0.1.0" in message
    assert weights_module.ENV_VAR in message


def test_path_setting_without_checkpoints_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setenv(weights_module.ENV_VAR, str(tmp_path))
    with pytest.raises(MusicnnNotFoundError, match="MSD_musicnn not found in .*pip install"):
        find_checkpoint("MSD_musicnn")
    with pytest.raises(UnknownNameError, match="valid: MSD_musicnn, MSD_vgg"):
        find_checkpoint("MSD_big")


@needs_checkpoints
def test_path_setting_finds_a_copied_checkpoint_folder(monkeypatch, checkpoint_copy):
    monkeypatch.setenv(weights_module.ENV_VAR, str(checkpoint_copy.parent))
    assert find_checkpoint("MTT_vgg") == checkpoint_copy


# --- mirsim tag ------------------------------------------------------------------------------

def _run(args: list):
    return CliRunner().invoke(mirsim_app, [str(a) for a in args])


@needs_checkpoints
def test_tag_cli_lists_top_tags(tmp_path, reference):
    path = tmp_path / "drums.wav"
    sf.write(str(path), reference["audio__drums"], 16000, subtype="PCM_16")
    r = _run(["tag", path, "--model", "MTT_musicnn", "-k", "4", "--json"])
    assert r.exit_code == 0, r.output
    answer = json.loads(r.stdout.strip().splitlines()[-1])
    assert answer["model"] == "MTT_musicnn" and len(answer["tags"]) == 4
    probs = [t["probability"] for t in answer["tags"]]
    assert probs == sorted(probs, reverse=True)
    want = reference["MTT_musicnn__drums__tags"].mean(0)
    assert answer["tags"][0]["tag"] == MTT_TAGS[want.argmax()]
    assert abs(probs[0] - want.max()) < TOL
    table = _run(["tag", path, "-k", "3"])  # default model: MSD_musicnn
    assert table.exit_code == 0, table.output
    top3 = [MSD_TAGS[i] for i in np.argsort(-reference["MSD_musicnn__drums__tags"].mean(0))[:3]]
    assert all(t in table.stdout for t in top3)


def test_tag_cli_errors_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv(weights_module.ENV_VAR, str(tmp_path))
    path = tmp_path / "x.wav"
    sf.write(str(path), _tone(1.0), 22050)
    r = _run(["tag", path])
    assert r.exit_code == 2
    assert "pip install --no-deps musicnn==0.1.0" in r.stderr and r.stderr.count("\n") == 1
    assert _run(["tag", path, "--model", "nope"]).exit_code == 2
