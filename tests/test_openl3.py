"""The ``openl3`` adapter: a one-line error without a package; with torchopenl3, its own network
at random weights (the real weights cannot be downloaded here)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

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
