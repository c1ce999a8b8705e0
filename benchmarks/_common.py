"""Shared helpers of the benchmarks: machine description and JSON output."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import mirsim  # noqa: F401  (before torch: pins the CPU kernels, see mirsim.reproducibility)
import torch

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """What the numbers were measured on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d")}


def write_result(name: str, data: dict) -> Path:
    """Write ``results/<name>.json`` (atomically), with the machine it was measured on."""
    from mirsim.artefacts.files import write_json

    return write_json(RESULTS / f"{name}.json", {"machine": machine(), **data})
