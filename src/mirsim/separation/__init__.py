"""Source separation of a mix into instrument stems, and its scores (SDR, SIR, SAR).

* :mod:`mirsim.separation.hpss`: the baseline, librosa's harmonic-percussive separation.
* :mod:`mirsim.separation.scores`: BSS Eval scores of separated stems (``mir_eval``).
"""
