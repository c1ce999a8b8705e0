"""Where networks train and embed: ``--device`` (``cpu``, ``cuda``, ``cuda:N``, ``mps`` or
``auto``: the first CUDA device if there is one, else the CPU).

The data stay on the CPU; each batch, the network, the loss's own parameters (proxies) and
the masks move to the device, and embeddings and saved weights come back to the CPU, so a
model trained on a GPU loads and embeds on a machine without one (``load_model`` reads the
weights onto the CPU). On the CPU nothing moves: results are the same as without a device.

>>> resolve_device("cpu")
device(type='cpu')
>>> is_device_name("cuda:1"), is_device_name("gpu")
(True, False)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from mirsim.errors import MirsimError

if TYPE_CHECKING:
    import torch

__all__ = ["DEVICE_CHOICES", "current_embedding_device", "embedding_device", "is_device_name",
           "resolve_device"]

#: What ``--device`` accepts, for messages.
DEVICE_CHOICES = "cpu, cuda, cuda:N, mps or auto"

_NAME = re.compile(r"^(cpu|cuda|cuda:\d+|mps|auto)$")
_EMBEDDING_DEVICE: ContextVar[str] = ContextVar("mirsim_embedding_device", default="cpu")


def _check_name(name: str) -> None:
    if not is_device_name(name):
        raise MirsimError(f"unknown device {name!r} (valid: {DEVICE_CHOICES})")


def is_device_name(value: object) -> bool:
    """Whether ``value`` is a device name ``--device`` accepts (available here or not)."""
    return isinstance(value, str) and bool(_NAME.match(value))


def resolve_device(name: str) -> "torch.device":
    """The torch device called ``name``, checked to be usable on this machine.

    Raises
    ------
    MirsimError
        An unknown name, or a device this machine does not have (one line, saying what it
        has).

    Examples
    --------
    >>> resolve_device("tpu")
    Traceback (most recent call last):
    ...
    mirsim.errors.MirsimError: unknown device 'tpu' (valid: cpu, cuda, cuda:N, mps or auto)
    """
    import torch

    _check_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise MirsimError(f"device {name!r}: this machine has no CUDA device (torch "
                              f"{torch.__version__} sees none); use --device cpu or auto")
        if device.index is not None and device.index >= count:
            raise MirsimError(f"device {name!r}: this machine has {count} CUDA device(s), "
                              f"cuda:0 to cuda:{count - 1}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise MirsimError(f"device {name!r}: Apple's Metal (MPS) is not available here; use "
                          f"--device cpu or auto")
    return device


@contextmanager
def embedding_device(name: str) -> Iterator[str]:
    """Within the block, models that :func:`mirsim.models.load_model` loads embed on ``name``
    (checked here first; ``cpu`` without importing torch, for the commands that start fast):
    how ``mirsim index build`` and ``query`` pass ``--device`` down to the models an index
    loads, however deep.

    Examples
    --------
    >>> with embedding_device("auto"):
    ...     current_embedding_device()
    'auto'
    >>> current_embedding_device()
    'cpu'
    """
    _check_name(name)
    if name != "cpu":
        resolve_device(name)
    token = _EMBEDDING_DEVICE.set(name)
    try:
        yield name
    finally:
        _EMBEDDING_DEVICE.reset(token)


def current_embedding_device() -> str:
    """The device loaded models embed on (``cpu`` unless :func:`embedding_device` says)."""
    return _EMBEDDING_DEVICE.get()
