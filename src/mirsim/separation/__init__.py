"""Source separation of a mix into instrument stems, and its scores (SDR, SIR, SAR).

* :mod:`mirsim.separation.separators`: choosing a separator by name (``make_separator``) or
  loading a fitted one (``load_separator``).
* :mod:`mirsim.separation.hpss`: the baseline, librosa's harmonic-percussive separation.
* :mod:`mirsim.separation.unmix`: Open-Unmix networks trained here on the training songs.
* :mod:`mirsim.separation.pretrained`: adapters of published Open-Unmix and Demucs weights.
* :mod:`mirsim.separation.spectral`: STFT, its inverse and the soft masks they share.
* :mod:`mirsim.separation.scores`: BSS Eval scores of separated stems (``mir_eval``).
"""
