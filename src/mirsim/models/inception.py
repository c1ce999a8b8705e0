"""Inception backbones of the conditional similarity networks (:mod:`mirsim.models.csn`).

``baseline``     Lee et al. (ICASSP 2020): the mel spectrogram through a convolution/max-pool
                 block, six Inception blocks, a dense layer to the embedding and layer
                 normalisation.
``multi-input``  Ribecky, Abeßer & Lukashevich (2021): one branch per input (mel spectrogram,
                 cyclic tempogram, CENS chroma) — a convolution/max-pool block and two
                 Inception blocks — whose 16×16 maps are concatenated along the channels,
                 then the baseline's four remaining Inception blocks, dense layer and layer
                 normalisation.

An Inception block here is a "naive" module (1×1, 3×3 and 5×5 convolutions and a 3×3 max
pool side by side, Szegedy et al. 2015) followed by a "dimension reduction" module (the same
with 1×1 convolutions before the 3×3 and 5×5 ones and after the pool), then a max pool.
Pooling is chosen from each input's size so that every branch reaches ``map_size`` ×
``map_size`` (16×16 for the 128 mel bands, 32 tempo bins, 16 chroma rows and 256 frames of
:class:`mirsim.features.multi_input.MultiInputFeature`) after its second Inception block;
the later blocks halve the maps down to 1×1, then a global average pool. Widths scale with
``width`` (channels of each convolution path); the papers' widths were not found, and the
default is small enough to train on a CPU.

The networks read the flattened ``(rows, frames)`` features (:class:`InputLayout`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mirsim.errors import MirsimError

#: Inception blocks of the baseline; the multi-input branches own the first two.
N_BLOCKS = 6
BRANCH_BLOCKS = 2


@dataclass(frozen=True)
class InputLayout:
    """Which rows of the flattened ``(rows, n_frames)`` feature matrix hold which input.

    Examples
    --------
    >>> layout = InputLayout(("mel", "chroma"), (4, 2), 3)
    >>> layout.n_features, layout.slices()["chroma"]
    (18, slice(4, 6, None))
    """

    names: tuple[str, ...]
    rows: tuple[int, ...]
    n_frames: int

    @property
    def n_features(self) -> int:
        return sum(self.rows) * self.n_frames

    def slices(self) -> dict[str, slice]:
        starts = [sum(self.rows[:i]) for i in range(len(self.rows))]
        return {n: slice(s, s + r) for n, s, r in zip(self.names, starts, self.rows)}

    def split(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(batch, n_features)`` → one ``(batch, 1, rows, n_frames)`` tensor per input."""
        m = x.reshape(len(x), 1, sum(self.rows), self.n_frames)
        return {n: m[:, :, s] for n, s in self.slices().items()}


def stage_pools(factor: int, stages: int = 3) -> list[int]:
    """Split a power-of-two downsampling ``factor`` over ``stages`` max pools, the later
    stages taking a factor 2 each while they can and the first one the rest.

    Examples
    --------
    >>> stage_pools(16), stage_pools(8), stage_pools(2), stage_pools(1)
    ([4, 2, 2], [2, 2, 2], [1, 1, 2], [1, 1, 1])
    """
    if factor < 1 or factor & (factor - 1):
        raise MirsimError(f"an input must be a power of two times the map size, got a "
                          f"factor of {factor}")
    pools = [1] * stages
    for i in range(stages - 1, 0, -1):
        if factor >= 2:
            pools[i], factor = 2, factor // 2
    pools[0] = factor
    return pools


def _conv(c_in: int, c_out: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, padding=k // 2), nn.BatchNorm2d(c_out),
                         nn.ReLU())


class InceptionModule(nn.Module):
    """1×1, 3×3 and 5×5 convolutions and a 3×3 max pool side by side, concatenated;
    ``reduce=True`` puts 1×1 convolutions (to half the width) before the 3×3 and 5×5 ones
    and after the pool ("dimension reduction"), ``False`` is the "naive" module.

    Examples
    --------
    >>> InceptionModule(3, 4, reduce=True)(torch.zeros(2, 3, 8, 8)).shape
    torch.Size([2, 16, 8, 8])
    """

    def __init__(self, c_in: int, width: int, reduce: bool):
        super().__init__()
        inner = max(width // 2, 1) if reduce else c_in

        def path(k: int) -> nn.Module:
            return (nn.Sequential(_conv(c_in, inner, 1), _conv(inner, width, k)) if reduce
                    else _conv(c_in, width, k))

        self.paths = nn.ModuleList([_conv(c_in, width, 1), path(3), path(5)])
        pool = nn.MaxPool2d(3, stride=1, padding=1)
        self.pool = nn.Sequential(pool, _conv(c_in, width, 1)) if reduce else pool
        self.out_channels = 3 * width + (width if reduce else c_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([p(x) for p in self.paths] + [self.pool(x)], dim=1)


class InceptionBlock(nn.Module):
    """A naive module, a dimension-reduction module, then a max pool of ``pool`` (rows,
    columns)."""

    def __init__(self, c_in: int, width: int, pool: tuple[int, int]):
        super().__init__()
        naive = InceptionModule(c_in, width, reduce=False)
        reduced = InceptionModule(naive.out_channels, width, reduce=True)
        self.body = nn.Sequential(naive, reduced, nn.MaxPool2d(pool) if pool != (1, 1)
                                  else nn.Identity())
        self.out_channels = reduced.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Branch(nn.Module):
    """Convolution/max-pool block and the first ``blocks`` Inception blocks of one input,
    pooled from ``(rows, n_frames)`` to ``(map_size, map_size)``."""

    def __init__(self, rows: int, n_frames: int, width: int, map_size: int,
                 blocks: int = BRANCH_BLOCKS):
        super().__init__()
        if rows % map_size or n_frames % map_size:
            raise MirsimError(f"an input of {rows} rows and {n_frames} frames cannot be pooled "
                              f"to {map_size}x{map_size} maps")
        pools = list(zip(stage_pools(rows // map_size, blocks + 1),
                         stage_pools(n_frames // map_size, blocks + 1)))
        layers: list[nn.Module] = [_conv(1, width, 3), nn.MaxPool2d(pools[0])]
        channels = width
        for pool in pools[1:]:
            block = InceptionBlock(channels, width, pool)
            layers.append(block)
            channels = block.out_channels
        self.body, self.out_channels = nn.Sequential(*layers), channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Trunk(nn.Module):
    """The Inception blocks after the branches (halving the maps while they are larger than
    1×1), a global average pool, a dense layer to the embedding and layer normalisation."""

    def __init__(self, c_in: int, width: int, map_size: int, blocks: int, embedding_dim: int):
        super().__init__()
        layers, size = [], map_size
        for _ in range(blocks):
            pool = 2 if size > 1 else 1
            block = InceptionBlock(c_in, width, (pool, pool))
            layers.append(block)
            c_in, size = block.out_channels, size // pool
        self.blocks = nn.Sequential(*layers)
        self.dense = nn.Linear(c_in, embedding_dim)
        self.norm = nn.LayerNorm(embedding_dim)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.norm(self.dense(self.blocks(maps).mean(dim=(2, 3))))


class ConditionalBackbone(nn.Module):
    """Features ``(batch, n_features)`` → embeddings ``(batch, embedding_dim)``.

    Parameters
    ----------
    layout : InputLayout
        The inputs in the features.
    kind : {"multi-input", "baseline"}
        One branch per input (Ribecky et al.), or the mel spectrogram alone (Lee et al.).
    width, map_size, embedding_dim : int

    Examples
    --------
    >>> layout = InputLayout(("mel", "tempogram", "chroma"), (16, 8, 4), 8)
    >>> net = ConditionalBackbone(layout, "multi-input", width=2, map_size=4, embedding_dim=6)
    >>> net(torch.zeros(3, layout.n_features)).shape
    torch.Size([3, 6])
    """

    def __init__(self, layout: InputLayout, kind: str = "multi-input", *, width: int = 8,
                 map_size: int = 16, embedding_dim: int = 256):
        super().__init__()
        if kind == "baseline" and "mel" not in layout.names:
            raise MirsimError("the baseline backbone reads the mel spectrogram: the features "
                              "have no 'mel' input")
        self.layout, self.kind = layout, kind
        self.used = ("mel",) if kind == "baseline" else layout.names
        rows = dict(zip(layout.names, layout.rows))
        self.branches = nn.ModuleDict({n: Branch(rows[n], layout.n_frames, width, map_size)
                                       for n in self.used})
        channels = sum(b.out_channels for b in self.branches.values())
        self.trunk = Trunk(channels, width, map_size, N_BLOCKS - BRANCH_BLOCKS, embedding_dim)

    def maps(self, x: torch.Tensor) -> torch.Tensor:
        """The concatenated ``(batch, channels, map_size, map_size)`` maps of the branches."""
        inputs = self.layout.split(x)
        return torch.cat([self.branches[n](inputs[n]) for n in self.used], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(self.maps(x))
