"""musicnn features (``musicnn-msd``, ``musicnn-mtt``) and tagging.

A sound is cut into 3 s patches (:mod:`~mirsim.features.musicnn.pipeline`); the network runs
on every patch and a feature vector is the mean over patches of one layer's output:

* ``penultimate`` — the 200-unit layer before the tags (256 for the VGG models);
* ``pooled`` — the mid-end features pooled over time, mean then max (2 × 753; musicnn only);
* ``tags`` — the 50 tag probabilities.
"""

from __future__ import annotations

from itertools import pairwise
from typing import ClassVar

import librosa
import numpy as np
import torch

from mirsim.errors import MirsimError
from mirsim.features.base import FeatureExtractor
from mirsim.features.musicnn.pipeline import SAMPLE_RATE, audio_patches
from mirsim.features.musicnn.tags import tags_of
from mirsim.features.musicnn.weights import find_checkpoint, load_network
from mirsim.params import Interval, Nullable, Options, estimator, param
from mirsim.registries import FEATURES

LAYERS = ("penultimate", "pooled", "tags")
ARCHITECTURES = ("musicnn", "vgg")
#: patches per forward pass (bounds memory on long sounds)
CHUNK_PATCHES = 32


def run_network(net: torch.nn.Module, patches: np.ndarray,
                chunk: int = CHUNK_PATCHES) -> dict[str, np.ndarray]:
    """Outputs of a loaded network for patches ``(n, frames, bands)``, per patch, as NumPy.

    Examples
    --------
    >>> from mirsim.features.musicnn.vgg_net import VGG
    >>> out = run_network(VGG().eval(), np.zeros((3, 187, 96), np.float32), chunk=2)
    >>> out["tags"].shape, out["penultimate"].shape
    ((3, 50), (3, 256))
    """
    parts: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for start in range(0, len(patches), chunk):
            x = torch.from_numpy(np.ascontiguousarray(patches[start:start + chunk],
                                                      dtype=np.float32))
            for key, value in net(x).items():
                parts.setdefault(key, []).append(value.numpy())
    return {key: np.concatenate(values) for key, values in parts.items()}


def model_outputs(y: np.ndarray, sr: int, model: str = "MSD_musicnn",
                  root: str | None = None) -> dict[str, np.ndarray]:
    """Per-patch outputs (``tags``, ``penultimate``, and for musicnn ``mean_pool`` and
    ``max_pool``) of ``model`` on a mono waveform sampled at ``sr``.

    Examples
    --------
    >>> y = np.random.default_rng(0).standard_normal(16000 * 7).astype(np.float32) * 0.01
    >>> out = model_outputs(y, 16000, "MTT_musicnn")  # doctest: +SKIP
    >>> out["tags"].shape, out["penultimate"].shape  # doctest: +SKIP
    ((2, 50), (2, 200))
    """
    return run_network(load_network(model, root), audio_patches(y, sr))


def top_tags(y: np.ndarray, sr: int, model: str = "MSD_musicnn", k: int = 10,
             root: str | None = None) -> list[tuple[str, float]]:
    """The ``k`` most likely tags of a sound and their probabilities (averaged over its 3 s
    patches, as the original ``musicnn.tagger.top_tags``), most likely first.

    Examples
    --------
    >>> y = np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32) * 0.01
    >>> [tag for tag, p in top_tags(y, 16000, "MTT_musicnn", k=3)]  # doctest: +SKIP
    ['quiet', 'ambient', 'slow']
    """
    scores = model_outputs(y, sr, model, root)["tags"].mean(axis=0)
    order = np.argsort(-scores, kind="stable")[:k]
    names = tags_of(model)
    return [(names[i], float(scores[i])) for i in order]


@estimator
class MusicnnFeature(FeatureExtractor):
    """Embeddings of a pretrained musicnn network (ported from the ``musicnn`` package).

    Use the subclasses ``musicnn-msd`` (trained on the Million Song Dataset's Last.fm tags)
    and ``musicnn-mtt`` (MagnaTagATune).

    Parameters
    ----------
    layer : {"penultimate", "pooled", "tags"}
        Output: the penultimate layer (200-d; 256-d for VGG), the mid-end features pooled over
        time (mean and max, 1506-d; musicnn only) or the 50 tag probabilities.
    architecture : {"musicnn", "vgg"}
        The network (the package ships both for each data set).
    duration : float or None
        Seconds analysed from the start (3 s = one patch); ``None`` analyses the whole sound.
        Shorter sounds are not zero-padded: their spectrogram frames are repeated to fill a
        patch. Longer ones are cut into 3 s patches whose vectors are averaged.

    Raises
    ------
    MusicnnNotFoundError
        The checkpoints are not installed (the message says how to get them).

    Examples
    --------
    >>> from mirsim.features import make_extractor
    >>> f = make_extractor("musicnn-msd")  # doctest: +SKIP
    >>> f(np.random.default_rng(0).standard_normal(22050).astype(np.float32), 22050).shape
    ... # doctest: +SKIP
    (200,)
    """

    dataset: ClassVar[str]
    sample_rate = SAMPLE_RATE

    layer: str = param("penultimate", Options(LAYERS), "output layer")
    architecture: str = param("musicnn", Options(ARCHITECTURES), "network")
    duration: float | None = param(3.0, Nullable(Interval(float, 0, None, closed="neither")),
                                   "seconds analysed from the start (none: all)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.layer == "pooled" and self.architecture == "vgg":
            raise MirsimError(f"{self.name}: layer 'pooled' exists only for architecture "
                              "'musicnn' (VGG has no mid-end features)")
        find_checkpoint(self.model)  # fail now, in one line, if the weights are not installed

    @property
    def model(self) -> str:
        """Name of the network, e.g. ``"MSD_musicnn"``."""
        return f"{self.dataset}_{self.architecture}"

    @property
    def identity(self) -> str:
        """Cache key: the feature name, model, layer, and a hash of every parameter."""
        return f"{self.name}-{self.model}-{self.layer}-{super().identity.rsplit('-', 1)[1]}"

    def prepare(self, waveform: np.ndarray, sr: int) -> np.ndarray:
        """Resample to 16 kHz and crop to ``duration`` (no padding: see the class notes)."""
        y = np.asarray(waveform, dtype=np.float32)
        if sr != self.sample_rate:
            y = librosa.resample(y, orig_sr=sr, target_sr=self.sample_rate, res_type="soxr_hq")
        if self.duration is not None:
            y = y[: round(self.duration * self.sample_rate)]
        return y

    def _vectors(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        if self.layer == "pooled":
            return np.concatenate([outputs["mean_pool"], outputs["max_pool"]], axis=1)
        return outputs[self.layer]

    def extract_batch(self, waveforms: list[np.ndarray]) -> np.ndarray:
        patches = [audio_patches(y, self.sample_rate) for y in waveforms]
        outputs = run_network(load_network(self.model), np.concatenate(patches))
        vectors = self._vectors(outputs)
        bounds = np.cumsum([0] + [len(p) for p in patches])
        return np.stack([vectors[a:b].mean(axis=0) for a, b in pairwise(bounds)]
                        ).astype(np.float32)

    def extract(self, y: np.ndarray) -> np.ndarray:
        return self.extract_batch([y])[0]


@FEATURES.register
@estimator
class MusicnnMSD(MusicnnFeature):
    """musicnn trained on the Million Song Dataset (Last.fm tags); see :class:`MusicnnFeature`."""

    name = "musicnn-msd"
    dataset = "MSD"


@FEATURES.register
@estimator
class MusicnnMTT(MusicnnFeature):
    """musicnn trained on MagnaTagATune; see :class:`MusicnnFeature`."""

    name = "musicnn-mtt"
    dataset = "MTT"
