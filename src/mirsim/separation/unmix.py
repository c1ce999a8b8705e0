"""An Open-Unmix separator (Stöter, Uhlich, Liutkus & Mitsufuji, 2019) trained by mirsim on
the training songs' own stems: ``drums``, ``bass`` and ``piano`` estimated from the mix.

Why not the ``openunmix`` package's model class: openunmix 1.3.0 imports torchaudio at the
top of ``openunmix/__init__.py`` (through ``openunmix.utils``) and of
``openunmix/transforms.py``, which ``openunmix/model.py`` imports, so even
``import openunmix.model`` needs torchaudio, and no torchaudio build matches the torch
(2.13) mirsim runs on. So :class:`UnmixNet` is mirsim's own network of the same
architecture, its parameters named as Open-Unmix's, so that the published Open-Unmix weights
(umxhq, umxl: :mod:`mirsim.separation.pretrained`) load into it.

The network, one per target: magnitude STFT frames of the mix (cropped to ``max_bin``),
shifted and scaled per bin (``input_mean``, ``input_scale``) -> a linear layer without bias,
batch norm, tanh -> a bidirectional LSTM (``nb_layers``) -> its input and output
concatenated -> linear, batch norm, ReLU -> linear, batch norm (to every bin) -> per-bin
``output_scale`` and ``output_mean`` -> ReLU, times the mix magnitude: an estimate of the
target's magnitude. Training (:meth:`OpenUnmixSeparator.fit`): excerpts of the training songs,
MSE between estimated and true target magnitudes, Adam, seeded. Separation: soft masks of the
estimates (:func:`mirsim.separation.spectral.soft_masks`, with a residual for what no target
claims) applied to the mix's STFT, inverted with the mix's phase.

>>> import numpy as np
>>> from mirsim.datasets.synthetic_multitrack import synthetic_multitrack
>>> songs = synthetic_multitrack(2, 2.0, 8000, seed=0)
>>> sep = OpenUnmixSeparator(epochs=1, hidden_size=8, nb_layers=1, n_fft=256, hop_length=64)
>>> sep = sep.fit([s["mix"] for s in songs], songs, 8000)
>>> out = sep.separate(songs[0]["mix"], 8000)
>>> sorted(out), out["drums"].shape == songs[0]["mix"].shape
(['bass', 'drums', 'piano'], True)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mirsim.errors import MirsimError
from mirsim.separation.spectral import istft, soft_masks, stft

__all__ = ["TARGETS", "UnmixNet", "OpenUnmixSeparator", "max_bin_for"]

#: What the per-instrument experiment separates.
TARGETS = ("drums", "bass", "piano")

_FORMAT = "mirsim-openunmix-1"
_WEIGHTS, _CONFIG = "weights.safetensors", "config.json"


def max_bin_for(sr: float, n_fft: int, bandwidth_hz: float | None) -> int:
    """Number of STFT bins at or below ``bandwidth_hz`` (all of them for ``None``).

    Examples
    --------
    >>> max_bin_for(44100, 4096, 16000)   # the published Open-Unmix models'
    1487
    """
    n_bins = n_fft // 2 + 1
    if bandwidth_hz is None:
        return n_bins
    return min(n_bins, int(math.floor(bandwidth_hz * n_fft / sr)) + 1)


class UnmixNet(nn.Module):
    """Open-Unmix's spectrogram network of one target (parameters named as Open-Unmix's).

    Parameters
    ----------
    nb_bins : int
        STFT bins of the input and output (``n_fft // 2 + 1``).
    nb_channels : int
        Audio channels (1: mono; the published models: 2).
    hidden_size : int
        Width of the layers (the LSTM has ``hidden_size // 2`` units per direction).
    nb_layers : int
        BLSTM layers (dropout 0.4 between them, as Open-Unmix).
    max_bin : int, optional
        Bins the network reads (the rest is cropped); default every bin.

    Examples
    --------
    >>> net = UnmixNet(65, hidden_size=8, nb_layers=1).eval()
    >>> net(torch.rand(2, 1, 65, 10)).shape
    torch.Size([2, 1, 65, 10])
    """

    def __init__(self, nb_bins: int, nb_channels: int = 1, hidden_size: int = 512,
                 nb_layers: int = 3, max_bin: int | None = None):
        super().__init__()
        self.nb_output_bins, self.nb_bins = nb_bins, max_bin or nb_bins
        self.nb_channels, self.hidden_size = nb_channels, hidden_size
        self.fc1 = nn.Linear(self.nb_bins * nb_channels, hidden_size, bias=False)
        self.bn1 = nn.BatchNorm1d(hidden_size)
        self.lstm = nn.LSTM(hidden_size, hidden_size // 2, num_layers=nb_layers,
                            bidirectional=True, dropout=0.4 if nb_layers > 1 else 0.0)
        self.fc2 = nn.Linear(hidden_size * 2, hidden_size, bias=False)
        self.bn2 = nn.BatchNorm1d(hidden_size)
        self.fc3 = nn.Linear(hidden_size, nb_bins * nb_channels, bias=False)
        self.bn3 = nn.BatchNorm1d(nb_bins * nb_channels)
        # Open-Unmix's convention: the input is (x + input_mean) * input_scale, i.e. these
        # hold minus the mean and one over the scale.
        self.input_mean = nn.Parameter(torch.zeros(self.nb_bins))
        self.input_scale = nn.Parameter(torch.ones(self.nb_bins))
        self.output_scale = nn.Parameter(torch.ones(nb_bins))
        self.output_mean = nn.Parameter(torch.ones(nb_bins))

    def set_input_statistics(self, mean: np.ndarray, scale: np.ndarray) -> None:
        """Normalise the input by a per-bin ``mean`` and ``scale`` (of training mixes)."""
        with torch.no_grad():
            self.input_mean.copy_(-torch.as_tensor(mean[: self.nb_bins], dtype=torch.float32))
            self.input_scale.copy_(1.0 / torch.as_tensor(scale[: self.nb_bins],
                                                         dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Target magnitude ``(batch, channels, bins, frames)`` of mix magnitudes of that
        shape."""
        mix = x.detach()
        x = x.permute(3, 0, 1, 2)  # frames, batch, channels, bins
        frames, batch, channels, _ = x.shape
        x = (x[..., : self.nb_bins] + self.input_mean) * self.input_scale
        x = self.bn1(self.fc1(x.reshape(-1, channels * self.nb_bins)))
        x = torch.tanh(x.reshape(frames, batch, self.hidden_size))
        x = torch.cat([x, self.lstm(x)[0]], -1)
        x = torch.relu(self.bn2(self.fc2(x.reshape(-1, x.shape[-1]))))
        x = self.bn3(self.fc3(x)).reshape(frames, batch, channels, self.nb_output_bins)
        x = torch.relu(x * self.output_scale + self.output_mean)
        return x.permute(1, 2, 3, 0) * mix


class OpenUnmixSeparator:
    """Open-Unmix networks (one per target) trained on the training songs' stems.

    Parameters
    ----------
    targets : sequence of str
        Stems estimated (each song's stems must have them).
    n_fft, hop_length : int
        STFT of the mix (Hann window).
    hidden_size, nb_layers : int
        Size of each :class:`UnmixNet`.
    bandwidth_hz : float, optional
        Highest frequency the networks read (Open-Unmix: 16 kHz); default all.
    epochs : int
        Passes over the training excerpts.
    seconds_per_song : float
        Audio of each training song used (its first seconds): bounds the training cost.
    excerpt_seconds : float
        Length of a training example (songs are cut into excerpts of this length).
    batch_size : int
    lr : float
        Adam's learning rate.
    seed : int
        Initial weights and the order of the excerpts.
    device : str
        Torch device of training and separation (``cpu``, ``cuda``...).

    Attributes
    ----------
    sr_ : int
        Sampling rate the networks were trained at (separation needs the same).
    history_ : list of float
        Mean training loss of each epoch.
    """

    name = "openunmix"
    trainable = True

    def __init__(self, targets: Sequence[str] = TARGETS, *, n_fft: int = 1024,
                 hop_length: int = 512, hidden_size: int = 128, nb_layers: int = 3,
                 bandwidth_hz: float | None = None, epochs: int = 15,
                 seconds_per_song: float = 20.0, excerpt_seconds: float = 3.0,
                 batch_size: int = 16, lr: float = 1e-3, seed: int = 0, device: str = "cpu"):
        if epochs < 1 or batch_size < 1 or hidden_size < 2 or nb_layers < 1:
            raise MirsimError("openunmix: epochs, batch_size, nb_layers must be positive and "
                              "hidden_size at least 2")
        if seconds_per_song <= 0 or excerpt_seconds <= 0:
            raise MirsimError("openunmix: seconds_per_song and excerpt_seconds must be positive")
        self.targets = tuple(targets)
        self.n_fft, self.hop_length = int(n_fft), int(hop_length)
        self.hidden_size, self.nb_layers = int(hidden_size), int(nb_layers)
        self.bandwidth_hz = bandwidth_hz
        self.epochs, self.batch_size, self.lr, self.seed = int(epochs), int(batch_size), lr, seed
        self.seconds_per_song, self.excerpt_seconds = seconds_per_song, excerpt_seconds
        self.device = device

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters (JSON values)."""
        return {"targets": list(self.targets), "n_fft": self.n_fft,
                "hop_length": self.hop_length, "hidden_size": self.hidden_size,
                "nb_layers": self.nb_layers, "bandwidth_hz": self.bandwidth_hz,
                "epochs": self.epochs, "seconds_per_song": self.seconds_per_song,
                "excerpt_seconds": self.excerpt_seconds, "batch_size": self.batch_size,
                "lr": self.lr, "seed": self.seed, "device": self.device}

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "nets_")

    # -- training ---------------------------------------------------------------------------
    def _magnitudes(self, x: np.ndarray) -> torch.Tensor:
        X = stft(torch.as_tensor(np.asarray(x, np.float32)), self.n_fft, self.hop_length)
        return X.abs()  # (bins, frames)

    def _excerpts(self, mixes: Sequence[np.ndarray], stems: Sequence[Mapping[str, np.ndarray]],
                  sr: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Magnitudes of the training excerpts: mixes ``(n, bins, frames)`` and targets
        ``(n, targets, bins, frames)``."""
        n = int(round(self.seconds_per_song * sr))
        frames = max(1, int(round(self.excerpt_seconds * sr / self.hop_length)))
        xs, ys = [], []
        for mix, song in zip(mixes, stems, strict=True):
            missing = [t for t in self.targets if t not in song]
            if missing:
                raise MirsimError(f"openunmix: a training song has no {missing[0]!r} stem")
            X = self._magnitudes(mix[:n])
            Y = torch.stack([self._magnitudes(song[t][:n]) for t in self.targets])
            for start in range(0, max(1, X.shape[-1] - frames + 1), frames):
                xs.append(X[:, start:start + frames])
                ys.append(Y[..., start:start + frames])
        shortest = min(x.shape[-1] for x in xs)  # songs shorter than an excerpt
        return (torch.stack([x[:, :shortest] for x in xs]),
                torch.stack([y[..., :shortest] for y in ys]))

    def fit(self, mixes: Sequence[np.ndarray], stems: Sequence[Mapping[str, np.ndarray]],
            sr: int) -> OpenUnmixSeparator:
        """Train on the training songs: their mixes and their stems (``stems[i][target]``).

        Examples
        --------
        >>> from mirsim.datasets.synthetic_multitrack import synthetic_multitrack
        >>> s = synthetic_multitrack(2, 1.0, 8000, seed=0)
        >>> sep = OpenUnmixSeparator(epochs=2, hidden_size=8, nb_layers=1, n_fft=256,
        ...                          hop_length=64).fit([x["mix"] for x in s], s, 8000)
        >>> len(sep.history_)
        2
        """
        if not len(mixes):
            raise MirsimError("openunmix: no training songs to fit on")
        X, Y = self._excerpts(mixes, stems, sr)
        mean = X.mean(dim=(0, 2)).numpy()
        scale = X.std(dim=(0, 2)).clamp_min(1e-5).numpy()
        torch.manual_seed(self.seed)
        nb_bins = self.n_fft // 2 + 1
        max_bin = max_bin_for(sr, self.n_fft, self.bandwidth_hz)
        nets = nn.ModuleDict({t: UnmixNet(nb_bins, 1, self.hidden_size, self.nb_layers, max_bin)
                              for t in self.targets})
        for net in nets.values():
            net.set_input_statistics(mean, scale)
        nets.to(self.device)
        optimiser = torch.optim.Adam(nets.parameters(), lr=self.lr)
        order = torch.Generator().manual_seed(self.seed)
        self.history_ = []
        nets.train()
        for _ in range(self.epochs):
            total = 0.0
            for batch in torch.randperm(len(X), generator=order).split(self.batch_size):
                if len(batch) < 2 and len(X) >= 2:  # batch norm needs two examples
                    continue
                x = X[batch].unsqueeze(1).to(self.device)
                y = Y[batch].to(self.device)
                loss = sum(nn.functional.mse_loss(nets[t](x)[:, 0], y[:, i])
                           for i, t in enumerate(self.targets))
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(batch)
            self.history_.append(total / len(X))
        self.nets_ = nets.eval()
        self.sr_ = int(sr)
        return self

    # -- separation -------------------------------------------------------------------------
    def separate(self, mix: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        """Each target of a mono ``mix`` (same length and rate).

        Examples
        --------
        >>> OpenUnmixSeparator().separate(np.zeros(100), 8000)
        Traceback (most recent call last):
        mirsim.errors.MirsimError: openunmix: fit the separator (or load a fitted one) first
        """
        if not self.is_fitted:
            raise MirsimError("openunmix: fit the separator (or load a fitted one) first")
        if int(sr) != self.sr_:
            raise MirsimError(f"openunmix: trained at {self.sr_} Hz, asked to separate audio "
                              f"at {sr} Hz")
        mix = np.asarray(mix, np.float32)
        if mix.ndim != 1:
            raise ValueError(f"mix must be mono (1-D), got shape {mix.shape}")
        with torch.no_grad():
            X = stft(torch.as_tensor(mix, device=self.device), self.n_fft, self.hop_length)
            mag = X.abs()[None, None]  # batch, channel, bins, frames
            estimates = {t: self.nets_[t](mag)[0, 0] for t in self.targets}
            parts = soft_masks(X, estimates, residual=True)
            return {t: istft(parts[t], self.n_fft, self.hop_length, len(mix)).cpu().numpy()
                    for t in self.targets}

    # -- persistence ------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write the fitted separator to ``folder`` (``weights.safetensors``, ``config.json``).

        Examples
        --------
        >>> import tempfile
        >>> from mirsim.datasets.synthetic_multitrack import synthetic_multitrack
        >>> s = synthetic_multitrack(2, 1.0, 8000, seed=0)
        >>> sep = OpenUnmixSeparator(epochs=1, hidden_size=8, nb_layers=1, n_fft=256,
        ...                          hop_length=64).fit([x["mix"] for x in s], s, 8000)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     again = OpenUnmixSeparator.load(sep.save(d))
        >>> bool(np.array_equal(again.separate(s[0]["mix"], 8000)["bass"],
        ...                     sep.separate(s[0]["mix"], 8000)["bass"]))
        True
        """
        from safetensors.torch import save

        from mirsim.artefacts.files import write_bytes_atomic, write_json

        if not self.is_fitted:
            raise MirsimError("openunmix: only a fitted separator can be saved")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.nets_.state_dict().items()}
        write_bytes_atomic(folder / _WEIGHTS, save(state))
        write_json(folder / _CONFIG, {"format": _FORMAT, "separator": self.name,
                                      "params": self.get_params(), "sr": self.sr_,
                                      "history": self.history_})
        return folder

    @classmethod
    def load(cls, folder: str | Path, device: str | None = None) -> OpenUnmixSeparator:
        """A separator saved by :meth:`save` (on ``device``, default the saved one)."""
        from safetensors.torch import load_file

        from mirsim.artefacts.files import read_json_object

        folder = Path(folder)
        config = read_json_object(folder / _CONFIG)
        if config.get("format") != _FORMAT:
            raise MirsimError(f"{folder}: not a saved openunmix separator")
        params = dict(config["params"])
        if device is not None:
            params["device"] = device
        sep = cls(**params)
        state = load_file(str(folder / _WEIGHTS))
        nb_bins = sep.n_fft // 2 + 1
        max_bin = max_bin_for(config["sr"], sep.n_fft, sep.bandwidth_hz)
        nets = nn.ModuleDict({t: UnmixNet(nb_bins, 1, sep.hidden_size, sep.nb_layers, max_bin)
                              for t in sep.targets})
        nets.load_state_dict(state)
        sep.nets_ = nets.to(sep.device).eval()
        sep.sr_, sep.history_ = int(config["sr"]), list(config["history"])
        return sep
