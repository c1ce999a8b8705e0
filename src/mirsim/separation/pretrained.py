"""Adapters for published separators, used when their weights are present (or can be
downloaded): Open-Unmix ``umxhq`` / ``umxl`` and Hybrid Transformer Demucs ``htdemucs``.

mirsim ships no weights. Each adapter downloads the official files once into mirsim's cache
(``<cache>/weights/<model>/``, or ``weights_dir``; from the projects' own hosts or a mirror
given as ``base_url``) with :func:`mirsim.datasets.download.fetch_file`, checked against
their published checksums, and otherwise fails in one line.

* Open-Unmix (Stöter et al., 2019): one network per target (vocals, drums, bass, other),
  stereo, 44.1 kHz, STFT 4096 / hop 1024, networks read up to 16 kHz. The published file
  names carry the first 8 hex digits of the file's SHA-256 (torch.hub's ``hash_prefix``), the
  only checksum the project publishes: that prefix is what is checked. The weights load into
  mirsim's own :class:`~mirsim.separation.unmix.UnmixNet` (the ``openunmix`` package cannot be
  imported without torchaudio, see :mod:`mirsim.separation.unmix`).
* Demucs v4 ``htdemucs`` (Rouard, Massa & Défossez, 2023): needs the ``demucs`` package
  (``pip install mirsim[demucs]``; it installs without torchaudio) for the network; the
  file's full SHA-256 is checked before it is unpickled.
* Spleeter is not adapted: its networks and published weights are TensorFlow checkpoints, and
  mirsim's environment has no TensorFlow (spleeter 2.4 also pins an old TensorFlow and
  numpy 1).

Both models separate four stems; the per-instrument experiment's ``piano`` is their
``other`` (MUSDB18's "other" holds piano, guitar and the rest). A mono mix is resampled to
44.1 kHz and played on both channels; the stems are averaged back to mono and resampled to
the mix's rate and length.

>>> sorted(OPENUNMIX_MODELS), DEMUCS_MODELS["htdemucs"]["file"]
(['umxhq', 'umxl'], '955717e8-8726e21a.th')
"""

from __future__ import annotations

import fractions
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from mirsim.config import cache_dir
from mirsim.datasets.download import DownloadError, fetch_file
from mirsim.errors import MirsimError

__all__ = ["OPENUNMIX_MODELS", "DEMUCS_MODELS", "fetch_openunmix_weights",
           "fetch_demucs_weights", "PretrainedUnmixSeparator", "UMXHQSeparator",
           "UMXLSeparator", "DemucsSeparator"]

#: The published Open-Unmix models (openunmix 1.3.0's hub definitions): where their files
#: are, their names (``<target>-<first 8 hex digits of the SHA-256>.pth``) and network size.
OPENUNMIX_MODELS: dict[str, dict[str, Any]] = {
    "umxhq": {"url": "https://zenodo.org/records/3370489/files", "hidden_size": 512,
              "files": {"vocals": "vocals-b62c91ce.pth", "drums": "drums-9619578f.pth",
                        "bass": "bass-8d85a5bd.pth", "other": "other-b52fbbf7.pth"}},
    "umxl": {"url": "https://zenodo.org/records/5069601/files", "hidden_size": 1024,
             "files": {"vocals": "vocals-bccbd9aa.pth", "drums": "drums-69e0ebd4.pth",
                       "bass": "bass-2ca1ce51.pth", "other": "other-c8c5b3e6.pth"}},
}

#: The published Demucs v4 model (demucs 4.1.0's ``remote/files.txt`` and ``htdemucs.yaml``):
#: its file (named ``<signature>-<first 8 hex digits of the SHA-256>.th``) and full SHA-256.
DEMUCS_MODELS: dict[str, dict[str, Any]] = {
    "htdemucs": {"url": "https://dl.fbaipublicfiles.com/demucs/hybrid_transformer",
                 "file": "955717e8-8726e21a.th",
                 "sha256": "8726e21a993978c7ba086d3872e7608d7d5bfca646ca4aca459ffda844faa8b4"},
}

#: The experiment's stems, as the four-stem models name them.
STEM_OF = {"drums": "drums", "bass": "bass", "piano": "other"}

_RATE = 44100


def _folder(model: str, dest: str | Path | None) -> Path:
    return Path(dest) if dest is not None else cache_dir() / "weights" / model


def fetch_openunmix_weights(model: str, target: str, *, base_url: str | None = None,
                            dest: str | Path | None = None, expected: str | None = None,
                            timeout: float = 60) -> Path:
    """The weight file of one Open-Unmix target, downloaded once and checked.

    Parameters
    ----------
    model : {"umxhq", "umxl"}
    target : {"vocals", "drums", "bass", "other"}
    base_url : str, optional
        Server holding the files under their published names; default the model's record.
    dest : path, optional
        Folder of the files; default ``<mirsim cache>/weights/<model>``.
    expected : str, optional
        SHA-256 (or its start, 8 hex digits at least) to check instead of the published one.

    Examples
    --------
    >>> fetch_openunmix_weights("umxhq", "drums").name   # doctest: +SKIP
    'drums-9619578f.pth'
    """
    if model not in OPENUNMIX_MODELS:
        raise MirsimError(f"unknown Open-Unmix model {model!r} (valid: umxhq, umxl)")
    files = OPENUNMIX_MODELS[model]["files"]
    if target not in files:
        raise MirsimError(f"{model} has no target {target!r} (valid: {', '.join(files)})")
    name = files[target]
    expected = expected or name.rsplit("-", 1)[1].split(".")[0]
    url = f"{(base_url or OPENUNMIX_MODELS[model]['url']).rstrip('/')}/{name}"
    checksum = "sha256" if len(expected) == 64 else "sha256-prefix"
    return fetch_file(url, _folder(model, dest) / name, expected, checksum=checksum,
                      timeout=timeout)


def fetch_demucs_weights(model: str = "htdemucs", *, base_url: str | None = None,
                         dest: str | Path | None = None, expected: str | None = None,
                         timeout: float = 60) -> Path:
    """The weight file of a Demucs model, downloaded once and checked against its SHA-256.

    Examples
    --------
    >>> fetch_demucs_weights().name   # doctest: +SKIP
    '955717e8-8726e21a.th'
    """
    if model not in DEMUCS_MODELS:
        raise MirsimError(f"unknown Demucs model {model!r} (valid: {', '.join(DEMUCS_MODELS)})")
    record = DEMUCS_MODELS[model]
    url = f"{(base_url or record['url']).rstrip('/')}/{record['file']}"
    return fetch_file(url, _folder(model, dest) / record["file"], expected or record["sha256"],
                      timeout=timeout)


def _resample(x: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    from math import gcd

    from scipy.signal import resample_poly

    if sr_from == sr_to:
        return np.asarray(x, np.float32)
    g = gcd(int(sr_from), int(sr_to))
    return resample_poly(x, sr_to // g, sr_from // g, axis=-1).astype(np.float32)


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    return np.pad(x[:n], (0, max(0, n - len(x))))


class _Pretrained:
    """What the adapters share: nothing to fit, weights fetched on first use."""

    trainable = False

    def fit(self, mixes, stems, sr):
        return self

    def _unavailable(self, exc: Exception) -> MirsimError:
        return MirsimError(f"separator {self.name!r}: weights not present and not downloadable "
                           f"({str(exc).splitlines()[0]}); put the files in "
                           f"{self._dest()} or give base_url=")

    def _dest(self) -> Path:
        return _folder(self.model, self.weights_dir)

    def separate(self, mix: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        mix = np.asarray(mix, np.float32)
        if mix.ndim != 1:
            raise ValueError(f"mix must be mono (1-D), got shape {mix.shape}")
        stereo = np.stack([_resample(mix, sr, _RATE)] * 2)
        stems = self._separate_stereo(stereo)  # stem -> (2, samples) at 44.1 kHz
        return {ours: _fit_length(_resample(stems[theirs].mean(0), _RATE, sr), len(mix))
                for ours, theirs in STEM_OF.items()}


class PretrainedUnmixSeparator(_Pretrained):
    """Published Open-Unmix weights (``model``: umxhq or umxl) in mirsim's
    :class:`~mirsim.separation.unmix.UnmixNet`; soft masks of the four targets' estimates.

    Parameters
    ----------
    model : {"umxhq", "umxl"}
    weights_dir : path, optional
        Folder holding (or to receive) the four ``.pth`` files.
    base_url : str, optional
        Mirror of the files; default the project's record.
    expected : dict, optional
        ``{target: SHA-256 or prefix}`` instead of the published prefixes.
    hidden_size : int, optional
        Network width (default the model's: 512 or 1024).
    device : str
    """

    name = "umx"
    model = "umxhq"
    n_fft, hop_length, bandwidth_hz = 4096, 1024, 16000.0

    def __init__(self, weights_dir: str | Path | None = None, base_url: str | None = None,
                 expected: dict[str, str] | None = None, hidden_size: int | None = None,
                 device: str = "cpu"):
        self.weights_dir, self.base_url, self.expected = weights_dir, base_url, expected or {}
        self.hidden_size = hidden_size or OPENUNMIX_MODELS[self.model]["hidden_size"]
        self.device = device

    def _nets(self) -> dict[str, Any]:
        if hasattr(self, "nets_"):
            return self.nets_
        import torch

        from mirsim.separation.unmix import UnmixNet, max_bin_for

        nets = {}
        for target in OPENUNMIX_MODELS[self.model]["files"]:
            try:
                path = fetch_openunmix_weights(self.model, target, base_url=self.base_url,
                                               dest=self.weights_dir,
                                               expected=self.expected.get(target))
            except DownloadError as exc:
                raise self._unavailable(exc) from None
            state = torch.load(path, map_location="cpu", weights_only=True)
            net = UnmixNet(self.n_fft // 2 + 1, 2, self.hidden_size, 3,
                           max_bin_for(_RATE, self.n_fft, self.bandwidth_hz))
            wanted = net.state_dict()  # older files may lack batch norm's step counters
            missing = [k for k in wanted if k not in state
                       and not k.endswith("num_batches_tracked")]
            if missing:
                raise MirsimError(f"{path}: not an Open-Unmix {self.model} file (no {missing[0]})")
            try:
                net.load_state_dict({k: state.get(k, wanted[k]) for k in wanted})
            except RuntimeError as exc:
                raise MirsimError(f"{path}: {str(exc).splitlines()[-1].strip()}") from None
            nets[target] = net.to(self.device).eval()
        self.nets_ = nets
        return nets

    def _separate_stereo(self, stereo: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        from mirsim.separation.spectral import istft, soft_masks, stft

        nets = self._nets()
        with torch.no_grad():
            X = stft(torch.as_tensor(stereo, device=self.device), self.n_fft, self.hop_length)
            mag = X.abs()[None]
            estimates = {t: net(mag)[0] for t, net in nets.items()}
            parts = soft_masks(X, estimates, residual=False)
            return {t: istft(p, self.n_fft, self.hop_length, stereo.shape[-1]).cpu().numpy()
                    for t, p in parts.items()}


class UMXHQSeparator(PretrainedUnmixSeparator):
    """Open-Unmix trained on MUSDB18-HQ (``umxhq``), published weights."""

    name = model = "umxhq"


class UMXLSeparator(PretrainedUnmixSeparator):
    """Open-Unmix "large" (``umxl``, trained on extra data), published weights."""

    name = model = "umxl"


def _demucs_package(path: Path, trusted: bool) -> dict:
    """The saved package (``klass``, ``args``, ``kwargs``, ``state``) of a Demucs file.

    Loaded with torch's safe loader that admits only Demucs's model classes; a file whose
    SHA-256 is the published one (``trusted``) may also be unpickled in full."""
    import pickle

    import torch
    from demucs.demucs import Demucs
    from demucs.hdemucs import HDemucs
    from demucs.htdemucs import HTDemucs

    try:
        with torch.serialization.safe_globals([HTDemucs, HDemucs, Demucs, fractions.Fraction]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not trusted:
            raise MirsimError(f"{path}: not a plain Demucs file "
                              f"({str(exc).splitlines()[0][:160]})") from None
        return torch.load(path, map_location="cpu", weights_only=False)


class DemucsSeparator(_Pretrained):
    """Published Hybrid Transformer Demucs (``htdemucs``) weights, run by the ``demucs``
    package's own network (``demucs.apply.apply_model``: 8 s chunks, overlap 0.25).

    Parameters
    ----------
    weights_dir : path, optional
        Folder holding (or to receive) ``955717e8-8726e21a.th``.
    base_url : str, optional
        Mirror of the file.
    expected : str, optional
        SHA-256 to check instead of the published one.
    shifts : int
        Random time shifts averaged (Demucs's test-time augmentation; 0: none).
    device : str
    """

    name = model = "htdemucs"

    def __init__(self, weights_dir: str | Path | None = None, base_url: str | None = None,
                 expected: str | None = None, shifts: int = 0, device: str = "cpu"):
        self.weights_dir, self.base_url, self.expected = weights_dir, base_url, expected
        self.shifts, self.device = shifts, device

    def _network(self):
        if hasattr(self, "net_"):
            return self.net_
        if importlib.util.find_spec("demucs") is None:
            raise MirsimError("separator 'htdemucs' needs the demucs package: "
                              "pip install 'mirsim[demucs]'")
        from demucs.states import load_model

        try:
            path = fetch_demucs_weights(self.model, base_url=self.base_url,
                                        dest=self.weights_dir, expected=self.expected)
        except DownloadError as exc:
            raise self._unavailable(exc) from None
        package = _demucs_package(path, trusted=self.expected is None)
        if not isinstance(package, dict) or "klass" not in package:
            raise MirsimError(f"{path}: not a Demucs model file")
        net = load_model(package)
        missing = [s for s in STEM_OF.values() if s not in net.sources]
        if missing:
            raise MirsimError(f"{path}: the model has no {missing[0]!r} source")
        self.net_ = net.to(self.device).eval()
        return self.net_

    def _separate_stereo(self, stereo: np.ndarray) -> dict[str, np.ndarray]:
        import torch
        from demucs.apply import apply_model

        net = self._network()
        x = torch.as_tensor(stereo)
        ref = x.mean(0)
        mean, std = ref.mean(), ref.std().clamp_min(1e-8)
        with torch.no_grad():
            y = apply_model(net, ((x - mean) / std)[None], shifts=self.shifts, split=True,
                            overlap=0.25, progress=False, device=self.device)[0]
        y = (y * std + mean).cpu().numpy()
        return {s: y[i] for i, s in enumerate(net.sources)}
