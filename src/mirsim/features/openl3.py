"""OpenL3 embeddings (Cramer et al., ICASSP 2019), the AN-GNN paper's best input.

mirsim does not ship OpenL3: the feature ``openl3`` works when the user has one of

- ``torchopenl3`` (PyTorch port; its weights are downloaded once into mirsim's cache, from the
  repository torchopenl3 itself downloads them from or from a mirror given as
  ``weights_url=URL``, and checked against their git blob ids, see
  :func:`fetch_torchopenl3_weights`; or read from a file given as ``weights=PATH``), or
- ``openl3`` (the original, TensorFlow/Keras; weights are installed with the package),

and otherwise fails at once with a one-line :class:`OpenL3Unavailable` saying how to get it.
Defaults follow the AN-GNN authors' extraction: ``mel256`` input, ``music`` content,
512-d embeddings of 1 s frames every 0.1 s (centred), averaged over the frames of the first
second of audio. Audio is resampled to 48 kHz by mirsim, so neither package resamples.

torchopenl3 1.0.1 pins ``resampy < 0.3``, which imports ``pkg_resources``, gone from setuptools
81 and later; mirsim never uses that resampler, so when (and only when) it cannot be imported,
torchopenl3 is imported with a stand-in ``resampy`` that is removed again right after.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np

from mirsim.config import cache_dir
from mirsim.datasets.download import DownloadError, fetch_file
from mirsim.errors import MirsimError
from mirsim.features.base import FeatureExtractor
from mirsim.params import Anything, Interval, Nullable, Options, estimator, param
from mirsim.registries import FEATURES

__all__ = ["OpenL3Feature", "OpenL3Unavailable", "fetch_torchopenl3_weights"]

_HOW = ("pip install torchopenl3 (PyTorch; weights downloaded once into mirsim's cache) "
        "or pip install openl3 (TensorFlow)")

#: Where torchopenl3 1.0.1 downloads its weights from: the raw files of a public git repository.
TORCHOPENL3_WEIGHTS_URL = "https://github.com/torchopenl3/torchopenl3-models/raw/master"

#: The git blob id of every weight file in that repository (``git ls-tree`` of its master
#: branch), keyed by (input_repr, content_type, embedding_size): the checksum of a download.
TORCHOPENL3_WEIGHTS_GIT_SHA1 = {
    ("linear", "env", 512): "ce9cb6e656b872de5f3315e281bb6b8ea133fff9",
    ("linear", "env", 6144): "000c2632604a4098cf60a77fb3cfab5e813b2799",
    ("linear", "music", 512): "6fa23ef077d23b89977eae57e6e9915c3acd7d47",
    ("linear", "music", 6144): "633b411652562ac692b54618d0f1d27073ea570b",
    ("mel128", "env", 512): "0bd0f509b478fd015f5ff44fc260b3248d03307d",
    ("mel128", "env", 6144): "8b831761f02efefb33e75c22c46b87be4ba255ce",
    ("mel128", "music", 512): "d77ec1cde7dc0098f02277dd70040451eead8e64",
    ("mel128", "music", 6144): "622336b173c40fbeeba4da4b3ba3a1373ac53df9",
    ("mel256", "env", 512): "a37a08222ebf9d8a88a84beeae76ad909dac0bc6",
    ("mel256", "env", 6144): "49d8b06f66f77e3e21e9e4313114e69e0fddf82d",
    ("mel256", "music", 512): "54df87b6bfe9747d001991da436b3d1ac768b2a6",
    ("mel256", "music", 6144): "297b97fcf4216b3c4f43eb48d9242faaf99cd250",
}


def fetch_torchopenl3_weights(input_repr: str = "mel256", content_type: str = "music",
                              embedding_size: int = 512, *, base_url: str | None = None,
                              dest: str | Path | None = None, expected: str | None = None,
                              timeout: float = 60) -> Path:
    """Download one torchopenl3 weight file (once), checked against its git blob id.

    Parameters
    ----------
    input_repr, content_type, embedding_size :
        Which network (see :class:`OpenL3Feature`).
    base_url : str, optional
        Server holding the files under their names (``torchopenl3_mel256_music_512.pth.tar``,
        ...); default :data:`TORCHOPENL3_WEIGHTS_URL`.
    dest : path, optional
        Folder to keep the file in; default ``<mirsim cache>/weights/torchopenl3``.
    expected : str, optional
        Git blob id to check against instead of :data:`TORCHOPENL3_WEIGHTS_GIT_SHA1`'s.
    timeout : float
        Seconds to wait for the server.

    Returns
    -------
    Path
        The verified file (already present and valid: not downloaded again).

    Raises
    ------
    mirsim.datasets.download.DownloadError
        No answer, HTTP error, or a file whose id is not the recorded one (not kept).

    Examples
    --------
    >>> fetch_torchopenl3_weights().name   # doctest: +SKIP
    'torchopenl3_mel256_music_512.pth.tar'
    >>> TORCHOPENL3_WEIGHTS_GIT_SHA1["mel256", "music", 512][:12]
    '54df87b6bfe9'
    """
    key = (input_repr, content_type, int(embedding_size))
    if expected is None:
        if key not in TORCHOPENL3_WEIGHTS_GIT_SHA1:
            raise ValueError(f"no torchopenl3 network {key}; choose input_repr in linear, "
                             "mel128, mel256, content_type in env, music, embedding_size in "
                             "512, 6144")
        expected = TORCHOPENL3_WEIGHTS_GIT_SHA1[key]
    name = "torchopenl3_{}_{}_{}.pth.tar".format(*key)
    folder = Path(dest) if dest is not None else cache_dir() / "weights" / "torchopenl3"
    url = f"{(base_url or TORCHOPENL3_WEIGHTS_URL).rstrip('/')}/{name}"
    return fetch_file(url, folder / name, expected, checksum="git-blob-sha1", timeout=timeout)


class OpenL3Unavailable(MirsimError, ImportError):
    """Neither OpenL3 package (or its weights) can be used; the message says how to fix it.

    Examples
    --------
    >>> "pip install torchopenl3" in str(OpenL3Unavailable())
    True
    """

    def __init__(self, reason: str = "no OpenL3 package installed"):
        super().__init__(f"feature 'openl3' is unavailable ({reason}): {_HOW}")


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def _resolve_backend(backend: str) -> str:
    """``torchopenl3`` or ``openl3``: the requested package, or for ``auto`` the first installed."""
    if backend not in {"auto", "torchopenl3", "openl3"}:
        raise ValueError(f"backend must be auto, torchopenl3 or openl3, not {backend!r}")
    for name in ("torchopenl3", "openl3") if backend == "auto" else (backend,):
        if _installed(name):
            return name
    raise OpenL3Unavailable("no OpenL3 package installed" if backend == "auto"
                            else f"package {backend} not installed")


def _import_torchopenl3(submodule: str) -> types.ModuleType:
    """``torchopenl3.<submodule>``, importing the package with a temporary stand-in for a
    ``resampy`` that cannot load (it needs ``pkg_resources``)."""
    try:
        importlib.import_module("torchopenl3")
    except ModuleNotFoundError as exc:
        if exc.name != "pkg_resources":
            raise
        _import_with_resampy_stand_in()
    return importlib.import_module(f"torchopenl3.{submodule}")


def _import_with_resampy_stand_in() -> None:
    # a failed import leaves some submodules behind (e.g. ``torchopenl3.models``); start clean
    for name in [m for m in sys.modules if m.split(".")[0] in ("resampy", "torchopenl3")]:
        del sys.modules[name]
    stand_in = types.ModuleType("resampy")

    def resample(*args: Any, **kwargs: Any):
        raise RuntimeError("resampy is not usable here; mirsim resamples audio itself")

    stand_in.resample = resample
    sys.modules["resampy"] = stand_in
    try:
        importlib.import_module("torchopenl3")
    finally:
        if sys.modules.get("resampy") is stand_in:
            del sys.modules["resampy"]


@functools.lru_cache(maxsize=2)
def _torch_model(input_repr: str, content_type: str, embedding_size: int, weights: str | None,
                 weights_url: str | None = None):
    import torch

    models = _import_torchopenl3("models")
    model = models.PytorchOpenl3(input_repr=input_repr, content_type=content_type,
                                 embedding_size=embedding_size)
    try:
        if weights is None:
            weights = fetch_torchopenl3_weights(input_repr, content_type, embedding_size,
                                                base_url=weights_url)
        state = torch.load(Path(weights).expanduser(), map_location="cpu", weights_only=True)
    except (DownloadError, OSError, RuntimeError, ValueError, EOFError) as exc:
        # no network for the first download, a wrong download, a missing or bad file
        raise OpenL3Unavailable(f"torchopenl3 weights could not be loaded: "
                                f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}; "
                                "pass weights=PATH to use a local file") from exc
    model.load_state_dict(state)
    return model.eval()


@functools.lru_cache(maxsize=2)
def _keras_model(input_repr: str, content_type: str, embedding_size: int):
    import openl3

    return openl3.models.load_audio_embedding_model(input_repr, content_type, embedding_size)


@FEATURES.register
@estimator
class OpenL3Feature(FeatureExtractor):
    """Time-averaged OpenL3 embedding (``openl3``), from ``torchopenl3`` or ``openl3``.

    Parameters
    ----------
    input_repr : {"mel256", "mel128", "linear"}
        Input representation of the network.
    content_type : {"music", "env"}
        Training data of the network.
    embedding_size : {512, 6144}
        Embedding dimension.
    hop_size : float
        Seconds between the 1 s analysis frames.
    center : bool
        Centre the first frame on the first sample (both packages' default).
    backend : {"auto", "torchopenl3", "openl3"}
        Package to use; ``auto`` takes ``torchopenl3`` if installed, else ``openl3``. Resolved
        when the extractor is made, so the cache key says which package produced the numbers.
    weights : str, optional
        torchopenl3 only: a state-dict file to load instead of the download.
    weights_url : str, optional
        torchopenl3 only: a mirror of the weight files to download from (checked against the
        same git blob ids, so it is not part of the cache key).
    sample_rate, duration :
        48 kHz (OpenL3's rate), first second of audio.

    Raises
    ------
    OpenL3Unavailable
        No usable package (one line, with the pip command).

    Examples
    --------
    >>> try:  # works only where torchopenl3 or openl3 is installed
    ...     f = OpenL3Feature()
    ... except OpenL3Unavailable as exc:
    ...     f = None
    >>> f is None or (f.backend in ("torchopenl3", "openl3") and f.embedding_size == 512)
    True
    """

    name = "openl3"

    input_repr: str = param("mel256", Options(("mel256", "mel128", "linear")),
                            "input representation")
    content_type: str = param("music", Options(("music", "env")), "training data")
    embedding_size: int = param(512, Options((512, 6144)), "embedding dimension")
    hop_size: float = param(0.1, Interval(float, 0, None, closed="neither"),
                            "seconds between frames")
    center: bool = param(True, Options((True, False)), "centre the first frame")
    backend: str = param("auto", Options(("auto", "torchopenl3", "openl3")), "package")
    weights: str | None = param(None, Anything(), "a local state-dict file (torchopenl3)")
    weights_url: str | None = param(None, Anything(), "a mirror of the weight files")
    sample_rate: int = param(48000, Interval(int, 1000, None), "analysis rate (Hz)")
    duration: float | None = param(1.0, Nullable(Interval(float, 0, None, closed="neither")),
                                   "seconds analysed from the start (none: all)")

    def __post_init__(self) -> None:
        super().__post_init__()
        # resolved now, so that the cache key says which package produced the numbers
        self.backend = _resolve_backend(self.backend)
        self.weights = None if self.weights is None else str(self.weights)

    def get_params(self) -> dict[str, Any]:
        """Parameters of the output: a mirror of the same verified weights changes nothing."""
        return {k: v for k, v in super().get_params().items() if k != "weights_url"}

    def extract(self, y: np.ndarray) -> np.ndarray:
        return self.extract_batch([y])[0]

    def extract_batch(self, waveforms: list[np.ndarray]) -> np.ndarray:
        if self.backend == "openl3":
            return np.stack([self._keras(y) for y in waveforms]).astype(np.float32)
        if len({len(y) for y in waveforms}) > 1:
            return np.stack([self.extract_batch([y])[0] for y in waveforms])
        return self._torch(np.stack(waveforms))

    def _torch(self, batch: np.ndarray) -> np.ndarray:
        import torch

        model = _torch_model(self.input_repr, self.content_type, self.embedding_size, self.weights,
                             self.weights_url)
        utils = _import_torchopenl3("utils")
        audio = torch.from_numpy(batch.astype(np.float64))
        frames = utils.preprocess_audio_batch(audio, self.sample_rate, center=self.center,
                                              hop_size=self.hop_size).to(torch.float32)
        with torch.no_grad():
            emb = model(frames)
        return emb.reshape(len(batch), -1, emb.shape[-1]).mean(dim=1).numpy().astype(np.float32)

    def _keras(self, y: np.ndarray) -> np.ndarray:
        import openl3

        model = _keras_model(self.input_repr, self.content_type, self.embedding_size)
        emb, _ = openl3.get_audio_embedding(y, self.sample_rate, model=model, center=self.center,
                                            hop_size=self.hop_size, verbose=False)
        return np.asarray(emb).mean(axis=0)
