"""Run directories: where an experiment leaves its config, metrics, model and reports."""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from mirsim.config import runs_dir
from mirsim.errors import MirsimError


def create_run_dir(name: str, root: str | Path | None = None) -> Path:
    """Create a fresh directory ``<root>/<timestamp>-<name>`` (``root``: ``MIRSIM_RUNS_DIR``
    or ``./runs``) and return it.

    Examples
    --------
    >>> import tempfile
    >>> create_run_dir("demo", tempfile.mkdtemp()).name.endswith("-demo")
    True
    """
    root = Path(root) if root is not None else runs_dir()
    root.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "run"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        path = root / (f"{stamp}-{slug}" if i == 0 else f"{stamp}-{slug}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a run directory under {root}")


def write_bytes_atomic(path: str | Path, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` through a temporary file and a rename.

    Examples
    --------
    >>> import tempfile
    >>> p = write_bytes_atomic(Path(tempfile.mkdtemp()) / "a" / "x.bin", b"\\x00\\x01")
    >>> p.read_bytes(), [q.name for q in p.parent.iterdir()]
    (b'\\x00\\x01', ['x.bin'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def read_json_object(path: str | Path, error: type[MirsimError] = MirsimError) -> dict[str, Any]:
    """The JSON object in ``path``; a missing, unreadable or non-object file raises ``error``
    (one line naming the file).

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a.json"
    >>> _ = write_json(p, {"k": 1})
    >>> read_json_object(p)
    {'k': 1}
    """
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path}: unreadable ({exc})") from None
    if not isinstance(value, dict):
        raise error(f"{path}: not a JSON object")
    return value


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically (NaN written as ``null``)."""
    return write_text_atomic(path, json.dumps(_finite(data), indent=2, default=str) + "\n")


def _finite(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x
