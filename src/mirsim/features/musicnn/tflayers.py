"""What it takes to make torch layers compute what TensorFlow 1 layers computed, and to load
their weights from a checkpoint.

* TF stores conv kernels as (height, width, in, out) ("HWIO"), torch as (out, in, h, w);
  dense kernels as (in, out), torch ``Linear`` weights as (out, in).
* ``tf.layers.batch_normalization`` uses epsilon 1e-3 (torch's default is 1e-5).
* TF's ``"same"`` padding of a stride-1 convolution pads ``k - 1`` in total, the odd one
  *after* the signal: for an even kernel the padding is asymmetric.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mirsim.features.musicnn.checkpoint import CheckpointError, CheckpointReader

#: epsilon of ``tf.compat.v1.layers.batch_normalization``
TF_BATCH_NORM_EPSILON = 1e-3


def same_padding(kernel: int) -> tuple[int, int]:
    """(before, after) padding of TF's ``"same"`` mode, stride 1.

    Examples
    --------
    >>> same_padding(3), same_padding(128), same_padding(1)
    ((1, 1), (63, 64), (0, 0))
    """
    total = kernel - 1
    return total // 2, total - total // 2


def batch_norm(n: int, dims: int = 1) -> nn.Module:
    """A batch norm with TF's epsilon, for ``dims``-D signals (1 or 2)."""
    cls = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
    return cls(n, eps=TF_BATCH_NORM_EPSILON)


def _assign(param: torch.Tensor, value: np.ndarray, what: str) -> None:
    if tuple(param.shape) != value.shape:
        raise CheckpointError(f"{what}: checkpoint shape {value.shape} does not fit the network's "
                              f"{tuple(param.shape)}")
    with torch.no_grad():
        param.copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))


def _read(reader: CheckpointReader, name: str) -> np.ndarray:
    if name not in reader:
        raise CheckpointError(f"{reader.prefix}: no tensor '{name}' (not a checkpoint of this "
                              "network?)")
    return reader.read(name)


def load_conv2d(conv: nn.Conv2d, reader: CheckpointReader, scope: str) -> None:
    """Load ``scope/kernel`` (HWIO) and ``scope/bias`` into a ``Conv2d``."""
    kernel = _read(reader, f"{scope}/kernel").transpose(3, 2, 0, 1)
    _assign(conv.weight, kernel, scope)
    _assign(conv.bias, _read(reader, f"{scope}/bias"), scope)


def load_conv_as_conv1d(conv: nn.Conv1d, reader: CheckpointReader, scope: str) -> None:
    """Load a TF conv2d whose kernel spans the whole feature axis, (k, C_in, 1, C_out), into
    the equivalent ``Conv1d`` over time with ``C_in`` input channels."""
    kernel = _read(reader, f"{scope}/kernel")
    if kernel.ndim != 4 or kernel.shape[2] != 1:
        raise CheckpointError(f"{scope}: expected a (k, C_in, 1, C_out) kernel, got "
                              f"{kernel.shape}")
    _assign(conv.weight, kernel[:, :, 0, :].transpose(2, 1, 0), scope)
    _assign(conv.bias, _read(reader, f"{scope}/bias"), scope)


def load_batch_norm(bn: nn.modules.batchnorm._BatchNorm, reader: CheckpointReader,
                    scope: str) -> None:
    """Load gamma, beta, moving mean and moving variance into a torch batch norm."""
    if bn.eps != TF_BATCH_NORM_EPSILON:
        raise ValueError(f"{scope}: batch norm epsilon {bn.eps} differs from TF's")
    _assign(bn.weight, _read(reader, f"{scope}/gamma"), scope)
    _assign(bn.bias, _read(reader, f"{scope}/beta"), scope)
    _assign(bn.running_mean, _read(reader, f"{scope}/moving_mean"), scope)
    _assign(bn.running_var, _read(reader, f"{scope}/moving_variance"), scope)


def load_dense(linear: nn.Linear, reader: CheckpointReader, scope: str) -> None:
    """Load ``scope/kernel`` (in, out) and ``scope/bias`` into a ``Linear``."""
    _assign(linear.weight, _read(reader, f"{scope}/kernel").T, scope)
    _assign(linear.bias, _read(reader, f"{scope}/bias"), scope)


def tf_layer_name(base: str, index: int) -> str:
    """TF's automatic layer names: ``conv2d``, ``conv2d_1``, ``conv2d_2``...

    Examples
    --------
    >>> tf_layer_name("dense", 0), tf_layer_name("batch_normalization", 3)
    ('dense', 'batch_normalization_3')
    """
    return base if index == 0 else f"{base}_{index}"
