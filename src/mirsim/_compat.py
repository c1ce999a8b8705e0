"""Compatibility shims for released versions of our dependencies.

kymatio 0.3.0 (the latest release) imports ``scipy.special.sph_harm`` at import time, for its
3-D scattering only; SciPy 1.17 removed that function in favour of ``sph_harm_y``. mirsim never
uses 3-D scattering, but the import would fail, so we provide the old name with its documented
meaning, ``sph_harm(m, n, theta, phi) == sph_harm_y(n, m, phi, theta)``, before importing
kymatio. Drop this once kymatio releases a version that no longer needs it.
"""

from __future__ import annotations


def ensure_kymatio_importable() -> None:
    """Install the ``scipy.special.sph_harm`` alias if SciPy no longer has it."""
    import scipy.special

    if not hasattr(scipy.special, "sph_harm"):

        def sph_harm(m, n, theta, phi):
            return scipy.special.sph_harm_y(n, m, phi, theta)

        scipy.special.sph_harm = sph_harm
