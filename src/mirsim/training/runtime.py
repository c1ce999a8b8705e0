"""The settings a training run holds while it runs: seeded RNG, one thread, flushed denormals,
one torch warning silenced."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch


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
