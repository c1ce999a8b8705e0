"""The VGG-like baseline of the musicnn package (Pons et al., "End-to-end learning for music
audio tagging at scale", ISMIR 2018; the package's ``MTT_vgg`` / ``MSD_vgg``) in PyTorch.

Five blocks of 3×3 convolution (128 filters, TF "same" padding) → ReLU → batch norm → max
pooling, on a batch-normalised log-mel patch; pooling (4, 1) with stride (2, 2) first (which
also keeps every other mel band), then (2, 2) three times, then (4, 4). The last pooled map
(2 frames × 1 band × 128 for a 3 s patch), flattened in TF's (time, band, channel) order, is the
*penultimate* vector; one dense layer maps it to the 50 tags.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mirsim.features.musicnn.checkpoint import CheckpointReader
from mirsim.features.musicnn.tflayers import (
    batch_norm,
    load_batch_norm,
    load_conv2d,
    load_dense,
    tf_layer_name,
)

#: (kernel, stride) of the max pooling after each convolution
POOLS = (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))


def _pooled_size(n: int, axis: int) -> int:
    for kernel, stride in POOLS:
        n = (n - kernel[axis]) // stride[axis] + 1
    return n


class VGG(nn.Module):
    """The musicnn package's VGG baseline.

    Parameters
    ----------
    n_classes : int
        Output tags (50).
    filters : int
        Filters of every convolution (128 in the released models).
    n_frames, n_mels : int
        Input patch size (187 frames = 3 s, 96 bands); the output layer depends on it.

    Examples
    --------
    >>> out = VGG().eval()(torch.zeros(1, 187, 96))
    >>> tuple(out["penultimate"].shape), tuple(out["tags"].shape)
    ((1, 256), (1, 50))
    """

    def __init__(self, n_classes: int = 50, filters: int = 128, n_frames: int = 187,
                 n_mels: int = 96):
        super().__init__()
        self.input_bn = batch_norm(1, dims=2)
        self.convs = nn.ModuleList([nn.Conv2d(1 if i == 0 else filters, filters, 3, padding=1)
                                    for i in range(len(POOLS))])
        self.bns = nn.ModuleList([batch_norm(filters, dims=2) for _ in POOLS])
        self.pools = nn.ModuleList([nn.MaxPool2d(k, s) for k, s in POOLS])
        n_flat = filters * _pooled_size(n_frames, 0) * _pooled_size(n_mels, 1)
        self.output = nn.Linear(n_flat, n_classes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Outputs of a batch of log-mel patches ``(batch, frames, bands)``: ``logits``,
        ``tags`` (sigmoid) and ``penultimate`` (the flattened last pooling)."""
        x = self.input_bn(x.unsqueeze(1))
        for conv, bn, pool in zip(self.convs, self.bns, self.pools):
            x = pool(bn(F.relu(conv(x))))
        penultimate = x.permute(0, 2, 3, 1).flatten(1)  # TF's NHWC order
        logits = self.output(penultimate)
        return {"logits": logits, "tags": torch.sigmoid(logits), "penultimate": penultimate}

    def load_tf_checkpoint(self, reader: CheckpointReader) -> VGG:
        """Load the weights of a VGG TF checkpoint (layers ``1CNN``..``5CNN``, batch norms 0-5,
        ``dense``); returns ``self``."""
        load_batch_norm(self.input_bn, reader, "batch_normalization")
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            load_conv2d(conv, reader, f"{i + 1}CNN")
            load_batch_norm(bn, reader, tf_layer_name("batch_normalization", i + 1))
        load_dense(self.output, reader, "dense")
        return self
