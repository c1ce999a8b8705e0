"""mirsim: learn how people hear similarity between musical sounds, and search with it."""

from mirsim.reproducibility import pin_cpu_kernels

__version__ = "0.1.0"

# Before torch loads: the same numbers on every x86-64 CPU (see mirsim.reproducibility).
pin_cpu_kernels()
