"""Augmented views of sounds, for self-supervised models (SimCLR): the same feature extracted
from randomly altered versions of each sound.

A view of a sound is made in the waveform domain, then analysed by the feature extractor as
the sound itself is:

1. **random crop**: the view starts a random offset into the sound, up to ``max_offset``
   seconds (and never past the middle of what was read), then is cut or padded to the
   extractor's ``duration`` by the extractor's own ``prepare``, as any sound is;
2. **pitch shift** by up to ``pitch_semitones`` semitones, **gain** by up to ``gain_db`` dB,
   **noise** (white, at a signal-to-noise ratio of ``min_snr_db`` to ``min_snr_db + 20`` dB)
   and **filtering** (a random seven-band parametric EQ of up to ``eq_db`` dB per band), each
   applied with probability ``p``: audiomentations' ``PitchShift``, ``Gain``,
   ``AddGaussianSNR`` and ``SevenBandParametricEQ``.

Views are deterministic: view ``j`` of a sound depends only on the augmentation's parameters,
``j``, the seed and the sound's content (its cache key), not on the sound's position in a
collection. They are cached in the feature cache (:class:`~mirsim.features.extraction.
FeatureCache`) under an identity that holds the extractor's identity, the augmentation's
parameters, the view index and the seed; a sound that cannot be read is skipped with its
reason, as for plain features.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

from mirsim.features.base import FeatureExtractor
from mirsim.features.extraction import (AudioSource, ExtractionResult, FeatureCache,
                                        extract_features)
from mirsim.params import Interval, check_params, declared, estimator, param


@estimator
class AugmentationParams:
    """The parameters of :class:`ViewAugmentation`, declared once: a self-supervised model
    inherits them, so that ``-p pitch_semitones=2`` sets them from a command line."""

    max_offset: float = param(0.25, Interval(float, 0, 10),
                              "random crop: a view starts up to this many seconds into the sound")
    pitch_semitones: float = param(1.0, Interval(float, 0, 12),
                                   "pitch shift of up to this many semitones, up or down")
    gain_db: float = param(6.0, Interval(float, 0, 40), "gain of up to this many dB, up or down")
    min_snr_db: float = param(25.0, Interval(float, 0, 100),
                              "white noise at a signal-to-noise ratio from this to 20 dB more")
    eq_db: float = param(3.0, Interval(float, 0, 24),
                         "filtering: a seven-band EQ cutting or boosting each band by up to this")
    p_augment: float = param(0.5, Interval(float, 0, 1), "probability that each of pitch "
                             "shift, filtering, gain and noise is applied to a view")

    def augmentation_params(self) -> dict[str, Any]:
        """The augmentation's parameters, by name."""
        return {k: getattr(self, k) for k in declared(AugmentationParams)}


@estimator
class ViewAugmentation(AugmentationParams):
    """How an augmented view of a sound is made (see the module's description).

    The defaults keep a view recognisably the same sound (one semitone, 6 dB, noise at least
    25 dB below the signal, 3 dB of EQ, a quarter of a second of crop): SimCLR learns what is invariant
    to its augmentations, and stronger ones would teach invariance to the very differences of
    timbre that the metric should keep.

    Examples
    --------
    >>> aug = ViewAugmentation(pitch_semitones=0.0)
    >>> y = np.sin(np.arange(22050) / 4.0).astype(np.float32)
    >>> a = aug.apply(y, 22050, seed=7); b = aug.apply(y, 22050, seed=7)
    >>> a.dtype, len(a) <= len(y), bool(np.array_equal(a, b))
    (dtype('float32'), True, True)
    """

    name: ClassVar[str] = "augmentation"
    #: bump when a view's audio changes for the same parameters
    version: ClassVar[int] = 1

    def check_params(self) -> None:
        """Raise a one-line error for a parameter outside its declared range."""
        check_params(self, "augmentation")

    def identity(self, view: int, seed: int) -> str:
        """A short hash of everything view ``view`` depends on besides the sound.

        Examples
        --------
        >>> a = ViewAugmentation()
        >>> a.identity(0, 0) == a.identity(0, 0), a.identity(0, 0) == a.identity(1, 0)
        (True, False)
        """
        blob = json.dumps({"params": self.augmentation_params(), "v": self.version, "view": view,
                           "seed": seed}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def _transforms(self):
        from audiomentations import AddGaussianSNR, Compose, Gain, PitchShift, SevenBandParametricEQ

        return Compose([
            PitchShift(-self.pitch_semitones, self.pitch_semitones, p=self.p_augment),
            SevenBandParametricEQ(-self.eq_db, self.eq_db, p=self.p_augment),
            Gain(-self.gain_db, self.gain_db, p=self.p_augment),
            AddGaussianSNR(self.min_snr_db, self.min_snr_db + 20.0, p=self.p_augment),
        ])

    def apply(self, y: np.ndarray, sr: int, seed: int) -> np.ndarray:
        """One view of waveform ``y`` (sampled at ``sr``), drawn with ``seed``.

        The crop removes at most half of ``y``; every other augmentation keeps its length.
        """
        rng = np.random.default_rng(seed)
        y = np.asarray(y, dtype=np.float32)
        start = int(rng.uniform(0.0, min(self.max_offset * sr, len(y) / 2)))
        y = np.ascontiguousarray(y[start:])
        with _global_rngs_seeded(int(rng.integers(2**32))):
            out = self._transforms()(samples=y, sample_rate=sr)
        return np.ascontiguousarray(out, dtype=np.float32)


@contextlib.contextmanager
def _global_rngs_seeded(seed: int) -> Iterator[None]:
    """Run a block with Python's and NumPy's global random generators seeded, restoring their
    state afterwards.

    audiomentations draws every random choice from these two global generators and takes no
    generator of its own, so this is the only way to make a view reproducible; the callers'
    random streams are left as they were.
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def view_seed(seed: int, view: int, key: str) -> int:
    """The seed of view ``view`` of the sound whose cache key is ``key``.

    Examples
    --------
    >>> view_seed(0, 1, "ab12") == view_seed(0, 1, "ab12") != view_seed(0, 2, "ab12")
    True
    """
    digest = hashlib.sha256(f"{seed}|{view}|{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


class AugmentedSource:
    """View ``view`` of an audio source: its audio cropped and augmented (an
    :class:`~mirsim.features.extraction.AudioSource` itself, with the source's name and key).

    Examples
    --------
    >>> class Tone:
    ...     name, key = "tone", "beef"
    ...     def load(self, sr, duration=None):
    ...         n = sr if duration is None else int(duration * sr)
    ...         return np.sin(np.arange(n) / 4.0).astype(np.float32)
    >>> v = AugmentedSource(Tone(), ViewAugmentation(max_offset=0.5), view=0, seed=0)
    >>> v.load(8000, duration=1.0).shape[0] <= 8000 * 1.5
    True
    """

    def __init__(self, source: AudioSource, augmentation: ViewAugmentation, view: int,
                 seed: int):
        self.source, self.augmentation, self.view, self.seed = source, augmentation, view, seed

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def key(self) -> str:
        return self.source.key

    def load(self, sr: int, duration: float | None = None) -> np.ndarray:
        need = None if duration is None else duration + self.augmentation.max_offset
        y = self.source.load(sr, need)
        return self.augmentation.apply(y, sr, view_seed(self.seed, self.view, self.key))


class ViewExtractor(FeatureExtractor):
    """A feature extractor's analysis of view ``view``: the extractor's ``prepare`` and
    ``extract_batch``, under an identity of its own (so that views are cached apart from the
    sounds and from each other)."""

    def __init__(self, extractor: FeatureExtractor, augmentation: ViewAugmentation, view: int,
                 seed: int):
        self.extractor, self.augmentation, self.view, self.seed = (extractor, augmentation,
                                                                   view, seed)
        self.name = extractor.name
        self.sample_rate, self.duration = extractor.sample_rate, extractor.duration

    @property
    def identity(self) -> str:
        return f"{self.extractor.identity}-view-{self.augmentation.identity(self.view, self.seed)}"

    def prepare(self, waveform: np.ndarray, sr: int) -> np.ndarray:
        return self.extractor.prepare(waveform, sr)

    def extract_batch(self, waveforms: list[np.ndarray]) -> np.ndarray:
        return self.extractor.extract_batch(waveforms)

    def extract(self, y: np.ndarray) -> np.ndarray:
        return self.extractor.extract(y)


def extract_views(
    sources: Sequence[AudioSource],
    extractor: FeatureExtractor,
    augmentation: ViewAugmentation,
    n_views: int,
    seed: int = 0,
    cache: FeatureCache | None = None,
    n_jobs: int = 1,
    progress: Callable[[int], None] | None = None,
) -> ExtractionResult:
    """Features of ``n_views`` augmented views of every source, read from the cache where
    possible (:func:`~mirsim.features.extraction.extract_features` for each view).

    Returns
    -------
    ExtractionResult
        ``features`` of shape ``(n_ok, n_views, dim)``: ``features[i, j]`` is view ``j`` of
        ``sources[ok[i]]``; a source any of whose views failed is in ``skipped`` (with the
        first failing view's reason) and not in ``ok``.

    Examples
    --------
    >>> import tempfile, soundfile as sf
    >>> from pathlib import Path
    >>> from mirsim.audio import FileSource
    >>> from mirsim.features import make_extractor
    >>> tone, empty = Path(tempfile.mkdtemp()) / "tone.wav", Path(tempfile.mkdtemp()) / "e.wav"
    >>> sf.write(tone, 0.3 * np.sin(np.arange(22050) / 3.0), 22050); empty.touch()
    >>> r = extract_views([FileSource(tone), FileSource(empty)], make_extractor("mfcc"),
    ...                   ViewAugmentation(), 2, cache=FeatureCache(tone.parent))
    >>> r.features.shape, r.ok.tolist(), r.skipped[0][2]
    ((1, 2, 40), [0], 'empty file (0 bytes)')
    """
    if n_views < 1:
        raise ValueError(f"n_views must be at least 1, got {n_views}")
    augmentation.check_params()
    per_view = [extract_features([AugmentedSource(s, augmentation, j, seed) for s in sources],
                                 ViewExtractor(extractor, augmentation, j, seed), cache=cache,
                                 n_jobs=n_jobs, progress=progress)
                for j in range(n_views)]
    reasons: dict[int, str] = {}
    for result in per_view:
        for i, _, reason in result.skipped:
            reasons.setdefault(i, reason)
    ok = np.array([i for i in range(len(sources)) if i not in reasons], dtype=int)
    rows = [{int(i): r for r, i in enumerate(result.ok)} for result in per_view]
    if len(ok):
        features = np.stack([np.stack([result.features[row[i]] for i in ok])
                             for result, row in zip(per_view, rows)], axis=1)
    else:
        features = np.zeros((0, n_views, 0), dtype=np.float32)
    skipped = [(i, sources[i].name, reasons[i]) for i in sorted(reasons)]
    return ExtractionResult(features.astype(np.float32), ok, skipped,
                            n_computed=sum(r.n_computed for r in per_view),
                            n_cached=sum(r.n_cached for r in per_view))


__all__ = ["AugmentationParams", "AugmentedSource", "ViewAugmentation", "ViewExtractor", "extract_views", "view_seed"]
