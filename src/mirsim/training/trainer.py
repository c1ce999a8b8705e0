"""Mini-batch training of an embedding network with a pytorch-metric-learning loss.

The defaults are the AN-GNN paper's: Proxy-Anchor loss (alpha 32, margin 0.1, one proxy per
class), AdamW (lr 0.05, weight decay 1e-5) over the network *and* the proxies, StepLR (step 10
epochs, gamma 0.8), 50 epochs, batches of 512.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch
from pytorch_metric_learning import losses
from torch import nn


@dataclass
class TrainingConfig:
    """Hyper-parameters of :func:`train_embedding` (every field can be overridden)."""

    epochs: int = 50
    batch_size: int = 512
    lr: float = 0.05
    weight_decay: float = 1e-5
    lr_step: int = 10
    lr_gamma: float = 0.8
    pa_alpha: float = 32.0
    pa_margin: float = 0.1
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's RNG seeded, restoring the caller's RNG state afterwards.

    Examples
    --------
    >>> with seeded(3):
    ...     a = torch.rand(2)
    >>> with seeded(3):
    ...     b = torch.rand(2)
    >>> bool(torch.equal(a, b))
    True
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run a block with one torch CPU thread, restoring the caller's setting afterwards.

    The networks trained here are small: extra threads gain little on a quiet machine, and on
    a busy one their spinning makes training many times slower. One thread also makes the
    numbers independent of the number of cores, so that folds trained in parallel worker
    processes give exactly what a serial run gives.

    Examples
    --------
    >>> before = torch.get_num_threads()
    >>> with single_threaded():
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def without_torch_reregistration_warning() -> Iterator[None]:
    """Silence one torch-internal warning while an optimizer is created.

    An optimizer's first parameter group imports ``torch._dynamo``; in a worker process that
    analysed audio before (feature extraction and training share joblib's workers) that import
    warns "Overriding a previously registered kernel ... _c10d_functional::wait_tensor", torch
    re-registering one of its own kernels: nothing of mirsim's, nothing to act on, and a page
    of noise in the middle of a command's output. Only that warning is filtered.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Warning only once for all operators",
                                category=UserWarning)
        yield


@contextlib.contextmanager
def denormals_flushed() -> Iterator[None]:
    """Run a block with denormal floats flushed to zero, then restore torch's default (off).

    Tiny gradients and activations of a network in training become denormal numbers, on which
    x86 floating-point units are up to a hundred times slower; a single matrix product holding
    some can take five times as long (measured here: a 512-wide AN-GNN step fell from 130 to
    about 100 ms). Flushing them changes values below 1e-38 only.

    Examples
    --------
    >>> with denormals_flushed():
    ...     float(torch.tensor([1e-39]) * 1.0)
    0.0
    """
    flushed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if flushed:
            torch.set_flush_denormal(False)


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=generator)
    parts = list(torch.split(order, batch_size))
    if len(parts) > 1 and len(parts[-1]) < 2:  # batch norm cannot train on a single item
        parts = parts[:-1]
    return parts


def train_embedding(
    network: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    embedding_dim: int,
    config: TrainingConfig | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``network`` so that its outputs of ``X`` cluster by ``y`` (Proxy-Anchor loss).

    Parameters
    ----------
    network : torch.nn.Module
        Maps a ``(batch, d_in)`` float tensor to ``(batch, embedding_dim)``. Graph networks
        build their graph over the batch.
    X : ndarray of shape (n, d_in)
        Standardised features.
    y : ndarray of shape (n,)
        Integer class ids ``0..C-1``.
    embedding_dim : int
        Output width of ``network`` (the proxies' dimension).
    config : TrainingConfig, optional
    on_epoch : callable, optional
        Called with ``(epoch, mean loss)`` after each epoch.

    Returns
    -------
    list of float
        Mean training loss of each epoch.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 4)).astype(np.float32); y = (X[:, 0] > 0).astype(int)
    >>> net = torch.nn.Linear(4, 8)
    >>> hist = train_embedding(net, X, y, 8, TrainingConfig(epochs=5, batch_size=32))
    >>> len(hist), hist[-1] < hist[0]
    (5, True)
    """
    config = config or TrainingConfig()
    n_classes = int(np.max(y)) + 1
    Xt = torch.as_tensor(X, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.long)
    history: list[float] = []
    with seeded(config.seed), single_threaded(), denormals_flushed():
        loss_fn = losses.ProxyAnchorLoss(num_classes=n_classes, embedding_size=embedding_dim,
                                         margin=config.pa_margin, alpha=config.pa_alpha)
        params = list(network.parameters()) + list(loss_fn.parameters())
        with without_torch_reregistration_warning():
            optimizer = torch.optim.AdamW(params, lr=config.lr,
                                          weight_decay=config.weight_decay, fused=True)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step,
                                                    gamma=config.lr_gamma)
        generator = torch.Generator().manual_seed(config.seed)
        network.train()
        for epoch in range(config.epochs):
            total, count = 0.0, 0
            for idx in _batches(len(Xt), config.batch_size, generator):
                optimizer.zero_grad()
                loss = loss_fn(network(Xt[idx]), yt[idx])
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            scheduler.step()
            history.append(total / max(count, 1))
            if on_epoch:
                on_epoch(epoch, history[-1])
    network.eval()
    return history
