"""Where the musicnn checkpoints are, and torch networks loaded from them.

The checkpoints come from the PyPI package ``musicnn`` 0.1.0, which ships them in its wheel.
mirsim never imports that package (it needs TensorFlow); it only reads its files. Install it
without its dependencies::

    pip install --no-deps musicnn==0.1.0

or point ``MIRSIM_MUSICNN_DIR`` at a folder holding the model folders (``MSD_musicnn/``,
``MTT_musicnn/``, ``MSD_vgg/``, ``MTT_vgg/``, each with ``.index`` and ``.data-00000-of-00001``).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

from torch import nn

from mirsim.errors import MirsimError, UnknownNameError
from mirsim.features.musicnn.checkpoint import CheckpointReader
from mirsim.features.musicnn.musicnn_net import Musicnn
from mirsim.features.musicnn.tags import tags_of
from mirsim.features.musicnn.vgg_net import VGG

#: the models of musicnn 0.1.0 whose checkpoints its wheel ships
MODELS = ("MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg")
#: environment variable naming a folder that holds the model folders
ENV_VAR = "MIRSIM_MUSICNN_DIR"
INSTALL_HINT = (f"install them with `pip install --no-deps musicnn==0.1.0`, or set {ENV_VAR} "
                "to a folder holding the model folders (MSD_musicnn/, MTT_musicnn/, ...)")


class MusicnnNotFoundError(MirsimError, FileNotFoundError):
    """The musicnn checkpoints are not installed (the message says how to get them)."""


def _package_dir() -> Path | None:
    """Folder of the installed ``musicnn`` package, found without importing it."""
    try:
        spec = importlib.util.find_spec("musicnn")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def checkpoint_root(root: str | Path | None = None) -> Path:
    """The folder holding the model folders: ``root``, else ``$MIRSIM_MUSICNN_DIR``, else the
    installed ``musicnn`` package.

    Raises
    ------
    MusicnnNotFoundError
        None of them exists; the message says how to install the checkpoints.
    """
    if root is None and os.environ.get(ENV_VAR):
        root, where = os.environ[ENV_VAR], f"{ENV_VAR}="
    else:
        where = ""
    if root is not None:
        path = Path(root).expanduser()
        if not path.is_dir():
            raise MusicnnNotFoundError(f"musicnn checkpoints: {where}{path} is not a folder; "
                                       f"{INSTALL_HINT}")
        return path
    found = _package_dir()
    if found is None:
        raise MusicnnNotFoundError(f"musicnn checkpoints not found (the musicnn package is not "
                                   f"installed); {INSTALL_HINT}")
    return found


def find_checkpoint(model: str, root: str | Path | None = None) -> Path:
    """The checkpoint folder of ``model`` (e.g. ``"MSD_musicnn"``).

    Raises
    ------
    UnknownNameError
        ``model`` is not one of :data:`MODELS`.
    MusicnnNotFoundError
        The checkpoint files are not there.

    Examples
    --------
    >>> find_checkpoint("MSD_musicnn").name  # doctest: +SKIP
    'MSD_musicnn'
    """
    if model not in MODELS:
        raise UnknownNameError("musicnn model", model, MODELS)
    folder = checkpoint_root(root) / model
    if not (folder / ".index").is_file() or not (folder / ".data-00000-of-00001").is_file():
        raise MusicnnNotFoundError(f"musicnn checkpoint {model} not found in {folder.parent}; "
                                   f"{INSTALL_HINT}")
    return folder


def build_network(model: str) -> nn.Module:
    """The untrained torch network of ``model`` (``Musicnn`` or ``VGG``), 50 tags."""
    if model not in MODELS:
        raise UnknownNameError("musicnn model", model, MODELS)
    n_classes = len(tags_of(model))
    return VGG(n_classes) if model.endswith("_vgg") else Musicnn(n_classes)


@functools.lru_cache(maxsize=4)
def _load(model: str, folder: str) -> nn.Module:
    net = build_network(model)
    net.load_tf_checkpoint(CheckpointReader(Path(folder)))
    return net.eval().requires_grad_(False)


def load_network(model: str, root: str | Path | None = None) -> nn.Module:
    """The network of ``model`` with the checkpoint's weights, in eval mode (cached per process).

    Examples
    --------
    >>> import torch
    >>> net = load_network("MTT_musicnn")  # doctest: +SKIP
    >>> net(torch.zeros(1, 187, 96))["tags"].shape  # doctest: +SKIP
    torch.Size([1, 50])
    """
    return _load(model, str(find_checkpoint(model, root).resolve()))
