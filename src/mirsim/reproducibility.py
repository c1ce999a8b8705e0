"""The same numbers on every x86-64 CPU: pin the code paths of torch's and MKL's kernels.

Training is seeded and single-threaded, so a run is deterministic on one machine, but not
across machines: torch picks its vectorised kernels by the CPU (AVX2 or AVX-512) and MKL its
matrix products (by CPU model and instruction set), and these round differently. Fifty epochs
of training amplify last-bit differences into different models. Measured on this project's
AMD EPYC (AN-GNN, MFCC, the 78 Cyberlioz sounds, group-kfold, mean MAP@R over 5 folds):
0.2196 with the defaults, 0.2206 with MKL's AVX2 path, 0.2137 with MKL's compatible path,
0.2150 with torch's scalar kernels; single folds moved by up to 0.035. The same configuration
gave 0.189 on the Intel Xeon (AVX-512) that made the README's earlier numbers and 0.213 on
an AMD EPYC of a user's.

:func:`pin_cpu_kernels` sets, unless they are already set, ``ATEN_CPU_CAPABILITY=avx2``
(torch's AVX2 kernels, which every x86-64 CPU of the last decade has) and ``MKL_CBWR=AVX2``
(MKL's conditional numerical reproducibility: the same AVX2 code path, hence the same
results, on Intel and compatible processors). They must be set before torch is imported:
``import mirsim`` does it, and worker processes inherit them. If torch was imported first,
nothing is set (worker processes must compute as their parent does). With both set,
the run above gives the same per-fold numbers whatever MKL's instruction-set setting and
however many folds train at once (tested on AVX2 CPUs; on an Intel Xeon with AVX-512 the
instruction-set setting still changed the numbers, so there some code path is not pinned). ``MIRSIM_NATIVE_KERNELS=1`` keeps each library's
own choice (possibly faster on AVX-512 machines, not comparable across machines).
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import MutableMapping

#: What :func:`pin_cpu_kernels` sets on x86-64.
PINNED = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}


def cpu_flags() -> set[str] | None:
    """The instruction-set flags of this CPU (Linux's ``/proc/cpuinfo``), or ``None`` where
    they cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def _has_avx2() -> bool:
    flags = cpu_flags()
    if flags is None:  # no /proc: assume a recent CPU
        return platform.machine().lower() in {"x86_64", "amd64"}
    return "avx2" in flags


def pin_cpu_kernels(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set the variables of :data:`PINNED` that are not set yet, on an x86-64 CPU with AVX2
    (elsewhere nothing is set), unless ``MIRSIM_NATIVE_KERNELS=1`` or torch is already
    imported (then it computes with its own choice, and worker processes must too); return
    what was set.

    Examples
    --------
    >>> env = {"MKL_CBWR": "COMPATIBLE"}
    >>> set_now = pin_cpu_kernels(env)
    >>> env["MKL_CBWR"], "MKL_CBWR" in set_now   # what the user set is kept
    ('COMPATIBLE', False)
    >>> pin_cpu_kernels({"MIRSIM_NATIVE_KERNELS": "1"})
    {}
    """
    if environ is None:
        if "torch" in sys.modules:
            return {}
        environ = os.environ
    if environ.get("MIRSIM_NATIVE_KERNELS", "").strip().lower() in {"1", "true", "yes"}:
        return {}
    if platform.machine().lower() not in {"x86_64", "amd64"} or not _has_avx2():
        return {}
    chosen = {k: v for k, v in PINNED.items() if k not in environ}
    environ.update(chosen)
    return chosen
