"""The CNN of Hashizume, Li & Toda: a log-mel spectrogram segment to a 128-d embedding.

Convolution blocks (3x3 convolution, batch norm, ReLU, 2x2 max pooling; 32, 64, 128 channels
by default), global average pooling and a fully connected layer to ``embedding_dim`` (128),
L2-normalised (cosine distance). Trained, as in the paper, with the triplet loss (margin 0.2)
on every valid triplet of a batch of 64: the positive a segment of the anchor's song (its
label), the negative one of another song; 150 epochs. Every default is overridable
(``-p epochs=20``). The triplet loss compares the normalised embeddings with
pytorch-metric-learning's ``LpDistance``, which orders pairs as cosine distance does
(``|a - b|^2 = 2 (1 - cos)``).

Input: flattened spectrograms of ``n_mels`` bands (:func:`mirsim.features.log_mel.log_mel_segments`);
the number of frames follows from the width of ``X``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from mirsim.errors import MirsimError
from mirsim.models.base import TorchMetricModel, _component
from mirsim.params import Interval, ListOf, Options, estimator, param
from mirsim.registries import LOSSES, MODELS
from mirsim.training.losses import Triplet

__all__ = ["SegmentCNNModel", "segment_cnn"]


class _Unflatten(nn.Module):
    def __init__(self, n_mels: int):
        super().__init__()
        self.n_mels = n_mels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), 1, self.n_mels, -1)


def segment_cnn(n_mels: int, channels: tuple[int, ...], embedding_dim: int) -> nn.Sequential:
    """Convolution blocks, global average pooling, a linear layer to ``embedding_dim``.

    Examples
    --------
    >>> segment_cnn(16, (4, 8), 5)(torch.zeros(3, 16 * 20)).shape
    torch.Size([3, 5])
    """
    layers: list[nn.Module] = [_Unflatten(n_mels)]
    width = 1
    for c in channels:
        layers += [nn.Conv2d(width, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
                   nn.MaxPool2d(2, ceil_mode=True)]
        width = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, embedding_dim)]
    return nn.Sequential(*layers)


@MODELS.register
@estimator
class SegmentCNNModel(TorchMetricModel):
    """Hashizume et al.'s segment CNN as a metric model (labels = songs).

    Examples
    --------
    >>> X = np.random.default_rng(0).standard_normal((16, 8 * 12)).astype(np.float32)
    >>> m = SegmentCNNModel(n_mels=8, channels=(4,), epochs=1, batch_size=8).fit(X, np.arange(16) % 4)
    >>> E = m.transform(X); E.shape, bool(np.allclose(np.linalg.norm(E, axis=1), 1))
    ((16, 128), True)
    """

    name = "segment-cnn"
    display_name = "Segment CNN (Hashizume et al.)"

    n_mels: int = param(128, Interval(int, 1, None), "mel bands of the input spectrogram")
    channels: tuple = param((32, 64, 128), ListOf(Interval(int, 1, None)),
                            "channels of the convolution blocks")
    embedding_dim: int = param(128, Interval(int, 1, None), "width of the embedding")
    loss: Any = param(Triplet(margin=0.2), _component(LOSSES), "training loss (name or object)")
    distance: str = param("cosine", Options(("auto", "cosine", "euclidean")),
                          "distance of the embedding space (auto: the loss's)")
    epochs: int = param(150, Interval(int, 1, None), "passes over the training data")
    batch_size: int = param(64, Interval(int, 2, None), "segments per batch")
    lr: float = param(1e-3, Interval(float, 0, None, closed="neither"), "AdamW learning rate")
    lr_step: int = param(50, Interval(int, 1, None), "epochs between learning-rate decays")

    def _build_network(self, n_features: int) -> nn.Module:
        if n_features % self.n_mels:
            raise MirsimError(f"{n_features} input features are not a whole number of frames "
                              f"of {self.n_mels} mel bands")
        return segment_cnn(self.n_mels, tuple(self.channels), self.embedding_dim)
