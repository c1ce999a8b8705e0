"""BSS Eval scores of separated stems: SDR, SIR and SAR in dB (the paper's Table I), with
``mir_eval.separation.bss_eval_sources``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref = {"drums": rng.standard_normal(8000), "bass": rng.standard_normal(8000)}
>>> est = {k: v + 0.01 * rng.standard_normal(8000) for k, v in ref.items()}
>>> s = separation_scores(ref, est)
>>> sorted(s), bool(s["drums"]["sdr"] > 30)
(['bass', 'drums'], True)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["separation_scores"]


def separation_scores(references: Mapping[str, np.ndarray], estimates: Mapping[str, np.ndarray]
                      ) -> dict[str, dict[str, float]]:
    """SDR, SIR and SAR (dB) of each estimated stem against its reference, the stems scored
    together (SIR measures leakage from the others). Silent references cannot be scored: they
    are refused in one line.
    """
    import warnings

    from mir_eval.separation import bss_eval_sources

    names = sorted(references)
    if sorted(estimates) != names:
        raise ValueError(f"estimates {sorted(estimates)} do not match references {names}")
    n = min(min(len(references[k]) for k in names), min(len(estimates[k]) for k in names))
    ref = np.stack([np.asarray(references[k], np.float64)[:n] for k in names])
    est = np.stack([np.asarray(estimates[k], np.float64)[:n] for k in names])
    silent = [k for k, r in zip(names, ref) if not np.any(r)]
    if silent:
        raise ValueError(f"silent reference stem(s) cannot be scored: {', '.join(silent)}")
    with warnings.catch_warnings():  # mir_eval 0.8 deprecates it for a successor not yet released
        warnings.simplefilter("ignore", FutureWarning)
        sdr, sir, sar, _ = bss_eval_sources(ref, est, compute_permutation=False)
    return {k: {"sdr": float(a), "sir": float(b), "sar": float(c)}
            for k, a, b, c in zip(names, sdr, sir, sar)}
