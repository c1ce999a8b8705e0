"""The ``openl3`` adapter: a one-line error without a package; with torchopenl3, its own network
at random weights (the real weights cannot be downloaded here)."""

from __future__ import annotations

import importlib.util
import subprocess

import numpy as np
import pytest
from http_server import serve

from mirsim.datasets.download import ChecksumError, DownloadError
from mirsim.errors import MirsimError
from mirsim.features import make_extractor
from mirsim.features import openl3 as adapter

HAVE_TORCHOPENL3 = importlib.util.find_spec("torchopenl3") is not None
# torchopenl3's own 256-band mel basis at 48 kHz has empty bands (librosa warns); not ours
QUIET = pytest.mark.filterwarnings("ignore:Empty filters detected:UserWarning")


def test_without_a_package_the_error_is_one_line_with_the_pip_command(monkeypatch):
    monkeypatch.setattr(adapter, "_installed", lambda package: False)
    with pytest.raises(MirsimError) as info:
        make_extractor("openl3")
    message = str(info.value)
    assert "\n" not in message and "pip install torchopenl3" in message
    assert "pip install openl3" in message
    with pytest.raises(adapter.OpenL3Unavailable, match="package openl3 not installed"):
        make_extractor("openl3", backend="openl3")


@pytest.fixture
def random_weights(tmp_path):
    """A state-dict file of torchopenl3's own network (mel256, music, 512) at random weights."""
    import torch

    models = adapter._import_torchopenl3("models")
    torch.manual_seed(0)
    net = models.PytorchOpenl3(input_repr="mel256", content_type="music", embedding_size=512)
    path = tmp_path / "random-openl3.pt"
    torch.save(net.state_dict(), path)
    return path


@pytest.mark.slow
@QUIET
@pytest.mark.skipif(not HAVE_TORCHOPENL3,
                    reason="torchopenl3 not installed (optional: pip install torchopenl3)")
def test_adapter_runs_torchopenl3s_network_like_the_package_does(random_weights):
    f = make_extractor("openl3", backend="torchopenl3", weights=str(random_weights))
    rng = np.random.default_rng(0)
    t = np.arange(2 * 22050) / 22050
    y = (0.3 * np.sin(2 * np.pi * 440 * t) * np.exp(-2 * t)).astype(np.float32)
    noise = (0.05 * rng.standard_normal(30000)).astype(np.float32)
    v = f(y, 22050)
    assert v.shape == (512,) and v.dtype == np.float32 and np.isfinite(v).all()
    y48 = f.prepare(y, 22050)  # one second at 48 kHz; anything after it is ignored
    np.testing.assert_allclose(f(np.concatenate([y48, y48]), 48000), f(y48, 48000), rtol=1e-5)

    # the package's own pipeline on the same 48 kHz audio gives the same mean embedding
    core = __import__("torchopenl3.core", fromlist=["get_audio_embedding"])
    model = adapter._torch_model("mel256", "music", 512, str(random_weights))
    audio = f.prepare(y, 22050)
    emb, _ = core.get_audio_embedding(audio, 48000, model=model, center=True, hop_size=0.1,
                                      sampler="julian", verbose=False)
    np.testing.assert_allclose(v, emb[0].mean(dim=0).numpy(), rtol=1e-4, atol=1e-5)

    batch = f.extract_batch([f.prepare(y, 22050), f.prepare(noise, 22050)])
    np.testing.assert_allclose(batch[0], v, rtol=1e-4, atol=1e-5)
    assert not np.allclose(batch[0], batch[1])


@QUIET
@pytest.mark.skipif(not HAVE_TORCHOPENL3, reason="torchopenl3 not installed")
def test_missing_weights_file_is_a_one_line_error(tmp_path):
    f = make_extractor("openl3", backend="torchopenl3", weights=str(tmp_path / "none.pt"))
    with pytest.raises(adapter.OpenL3Unavailable) as info:
        f(np.zeros(48000, np.float32) + 0.01, 48000)
    assert "\n" not in str(info.value) and "weights=PATH" in str(info.value)


# --- the weights download, run for real against a loopback HTTP server ---

NAME = "torchopenl3_mel256_music_512.pth.tar"


def git_hash_object(path) -> str:
    """The id git itself gives a file (the reference for mirsim's checksum)."""
    return subprocess.run(["git", "hash-object", str(path)], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def weights_server(tmp_path):
    """A loopback server holding a file under the real weight file's name (random bytes)."""
    served = tmp_path / "served"
    served.mkdir()
    (served / NAME).write_bytes(np.random.default_rng(0).bytes(50_000))
    with serve(served) as (url, requests):
        yield url, requests, served / NAME


def test_weights_download_is_checked_against_the_git_blob_id(weights_server, tmp_path):
    url, requests, served = weights_server
    dest = tmp_path / "weights"
    # the recorded id of the real file rejects these bytes, and nothing is kept
    with pytest.raises(ChecksumError, match=f"{NAME}: checksum mismatch \\(expected "
                       "git-blob-sha1 54df87b6bfe9747d001991da436b3d1ac768b2a6"):
        adapter.fetch_torchopenl3_weights(base_url=url, dest=dest)
    assert list(dest.iterdir()) == []
    # with the served file's own id (from git itself) it is downloaded once, then reused
    path = adapter.fetch_torchopenl3_weights(base_url=url + "/", dest=dest,
                                             expected=git_hash_object(served))
    assert path == dest / NAME and path.read_bytes() == served.read_bytes()
    assert requests == [f"/{NAME}", f"/{NAME}"]
    adapter.fetch_torchopenl3_weights(base_url=url, dest=dest, expected=git_hash_object(served))
    assert len(requests) == 2


def test_weights_download_errors_name_the_url(weights_server, tmp_path):
    url, _, _ = weights_server
    with pytest.raises(DownloadError, match="HTTP 404") as info:
        adapter.fetch_torchopenl3_weights("mel128", base_url=url, dest=tmp_path / "w")
    assert "torchopenl3_mel128_music_512.pth.tar" in str(info.value)
    with pytest.raises(ValueError, match="no torchopenl3 network"):
        adapter.fetch_torchopenl3_weights("mel64", base_url=url, dest=tmp_path / "w")


def test_recorded_ids_cover_every_network():
    assert len(adapter.TORCHOPENL3_WEIGHTS_GIT_SHA1) == 3 * 2 * 2
    assert all(len(v) == 40 and int(v, 16) >= 0
               for v in adapter.TORCHOPENL3_WEIGHTS_GIT_SHA1.values())


@QUIET
@pytest.mark.skipif(not HAVE_TORCHOPENL3, reason="torchopenl3 not installed")
def test_extractor_downloads_weights_and_refuses_a_wrong_file(random_weights, tmp_path,
                                                              monkeypatch):
    monkeypatch.setenv("MIRSIM_CACHE_DIR", str(tmp_path / "cache"))
    served = tmp_path / "mirror"
    served.mkdir()
    (served / NAME).write_bytes(random_weights.read_bytes())  # not the real network's file
    with serve(served) as (url, requests):
        f = make_extractor("openl3", backend="torchopenl3", weights_url=url)
        assert f.identity == make_extractor("openl3", backend="torchopenl3").identity
        with pytest.raises(adapter.OpenL3Unavailable, match="checksum mismatch") as info:
            f(np.zeros(48000, np.float32) + 0.01, 48000)
    assert requests == [f"/{NAME}"] and "\n" not in str(info.value)
    assert not (tmp_path / "cache" / "weights" / "torchopenl3" / NAME).exists()
