"""The musicnn architecture (Pons & Serra, "musicnn: pre-trained convolutional neural networks
for music audio tagging", ISMIR LBD 2019) in PyTorch.

* **Front end**, on a batch-normalised log-mel patch (time × 96 bands): musically motivated
  convolutions. Two *timbral* filter shapes span 7 frames × 38 or 67 bands (40 % and 70 % of the
  bands), three *temporal* shapes span 128, 64 or 32 frames × 1 band. Each is ReLU → batch norm
  → max over frequency, giving one sequence per filter: 2 × 204 + 3 × 51 = 561 channels.
* **Mid end**: three 1-D convolutions over time (7 frames, 64 filters, ReLU → batch norm),
  the second and third with residual connections; their outputs and the front end's are
  concatenated (dense connections): 561 + 3 × 64 = 753 channels per frame.
* **Back end**: max and mean over time (753 each), batch norm, a 200-unit dense layer
  (ReLU → batch norm: the *penultimate* layer), and a 50-unit output layer (sigmoid = tags).

Details that matter for matching the TF checkpoints: ReLU comes *before* batch norm, the
pooled vector interleaves max and mean per channel (TF flattens a (753, 2) array), TF's
"same" padding of the even temporal kernels is asymmetric, and batch-norm epsilon is 1e-3.
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
    load_conv_as_conv1d,
    load_dense,
    same_padding,
    tf_layer_name,
)


class _FrontEndBlock(nn.Module):
    """One filter shape of the front end: conv → ReLU → batch norm → max over frequency."""

    def __init__(self, filters: int, kernel: tuple[int, int], time_padding: tuple[int, int]):
        super().__init__()
        self.time_padding = time_padding
        self.conv = nn.Conv2d(1, filters, kernel)
        self.bn = batch_norm(filters, dims=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, T, F) -> (B, C, T)
        x = F.pad(x, (0, 0, *self.time_padding))
        return self.bn(F.relu(self.conv(x))).amax(dim=-1)


class _MidEndLayer(nn.Module):
    """Conv over time spanning all channels → ReLU → batch norm."""

    def __init__(self, in_channels: int, filters: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, filters, 7, padding=3)
        self.bn = batch_norm(filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, T) -> (B, C, T)
        return self.bn(F.relu(self.conv(x)))


class Musicnn(nn.Module):
    """musicnn: musically motivated front end, dense mid end, temporal-pooling back end.

    Parameters
    ----------
    n_classes : int
        Output tags (50 for the MTT and MSD models).
    n_mels : int
        Mel bands of the input (96).
    frontend_width : float
        Filter multiplier of the front end (1.6: 204 timbral and 51 temporal filters a shape).
    midend_filters, backend_units : int
        64 and 200 for the released MTT/MSD models.

    Examples
    --------
    >>> net = Musicnn().eval()
    >>> out = net(torch.zeros(2, 187, 96))
    >>> {k: tuple(v.shape) for k, v in out.items()}  # doctest: +NORMALIZE_WHITESPACE
    {'logits': (2, 50), 'tags': (2, 50), 'penultimate': (2, 200), 'mean_pool': (2, 753),
     'max_pool': (2, 753)}
    """

    def __init__(self, n_classes: int = 50, n_mels: int = 96, frontend_width: float = 1.6,
                 midend_filters: int = 64, backend_units: int = 200):
        super().__init__()
        self.input_bn = batch_norm(1, dims=2)
        n_timbral, n_temporal = int(frontend_width * 128), int(frontend_width * 32)
        self.timbral = nn.ModuleList([
            _FrontEndBlock(n_timbral, (7, int(share * n_mels)), (3, 3)) for share in (0.4, 0.7)])
        self.temporal = nn.ModuleList([
            _FrontEndBlock(n_temporal, (k, 1), same_padding(k)) for k in (128, 64, 32)])
        n_front = 2 * n_timbral + 3 * n_temporal
        self.midend = nn.ModuleList([_MidEndLayer(n_front, midend_filters),
                                     _MidEndLayer(midend_filters, midend_filters),
                                     _MidEndLayer(midend_filters, midend_filters)])
        n_mid = n_front + 3 * midend_filters
        self.pool_bn = batch_norm(2 * n_mid)
        self.dense = nn.Linear(2 * n_mid, backend_units)
        self.dense_bn = batch_norm(backend_units)
        self.output = nn.Linear(backend_units, n_classes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Outputs of a batch of log-mel patches ``(batch, frames, bands)``.

        Returns ``logits``, ``tags`` (sigmoid), ``penultimate`` (the 200-unit layer) and the
        mid-end features pooled over time, ``mean_pool`` and ``max_pool``.
        """
        x = self.input_bn(x.unsqueeze(1))
        front = torch.cat([block(x) for block in (*self.timbral, *self.temporal)], dim=1)
        h1 = self.midend[0](front)
        h2 = self.midend[1](h1) + h1
        h3 = self.midend[2](h2) + h2
        mid = torch.cat([front, h1, h2, h3], dim=1)  # (B, 753, T)
        max_pool, mean_pool = mid.amax(dim=-1), mid.mean(dim=-1)
        pooled = torch.stack([max_pool, mean_pool], dim=-1).flatten(1)  # TF's interleaved order
        penultimate = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))
        logits = self.output(penultimate)
        return {"logits": logits, "tags": torch.sigmoid(logits), "penultimate": penultimate,
                "mean_pool": mean_pool, "max_pool": max_pool}

    def load_tf_checkpoint(self, reader: CheckpointReader) -> Musicnn:
        """Load the weights of a musicnn TF checkpoint; returns ``self``.

        TF named the layers by creation order: batch norm 0 is the input's; conv 0-1 and batch
        norms 1-2 the timbral blocks; conv 2-4 / batch norms 3-5 the temporal ones; conv 5-7 /
        batch norms 6-8 the mid end; batch norm 9 the pooled vector; dense 0 and batch norm 10
        the penultimate layer; dense 1 the output.
        """
        bn = [tf_layer_name("batch_normalization", i) for i in range(11)]
        conv = [tf_layer_name("conv2d", i) for i in range(8)]
        load_batch_norm(self.input_bn, reader, bn[0])
        for i, block in enumerate((*self.timbral, *self.temporal)):
            load_conv2d(block.conv, reader, conv[i])
            load_batch_norm(block.bn, reader, bn[i + 1])
        for i, layer in enumerate(self.midend):
            load_conv_as_conv1d(layer.conv, reader, conv[5 + i])
            load_batch_norm(layer.bn, reader, bn[6 + i])
        load_batch_norm(self.pool_bn, reader, bn[9])
        load_dense(self.dense, reader, "dense")
        load_batch_norm(self.dense_bn, reader, bn[10])
        load_dense(self.output, reader, "dense_1")
        return self
