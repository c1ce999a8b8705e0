"""Short audio clips to embed in a report: the first seconds of a sound as a small WAV file.

WAV (16-bit PCM, mono) plays in every browser. At 16 kHz a 3-second clip is about 94 kB
(125 kB once base64-encoded in the page), so a report with 3 queries and their 5 neighbours
each stays under a few megabytes. The level is kept as it is (dynamics are part of the sound);
samples beyond full scale are clipped.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import soundfile as sf

#: Seconds of each sound that the report embeds.
CLIP_SECONDS = 3.0
#: Sample rate of the embedded clips (Hz).
CLIP_SAMPLE_RATE = 16000


def wav_clip(source: Any, seconds: float = CLIP_SECONDS, sr: int = CLIP_SAMPLE_RATE) -> bytes:
    """The first ``seconds`` of an audio source as WAV bytes (mono, 16-bit, ``sr`` Hz).

    Parameters
    ----------
    source : AudioSource
        Anything with ``load(sr, duration)`` (:class:`mirsim.audio.FileSource`, a rendered
        sound of a data set...).

    Raises
    ------
    mirsim.audio.AudioError
        The sound cannot be read.

    Examples
    --------
    >>> class Tone:
    ...     def load(self, sr, duration=None):
    ...         return np.sin(np.arange(int(sr * min(duration, 5.0))) / 4.0).astype(np.float32)
    >>> data, sr = sf.read(io.BytesIO(wav_clip(Tone(), seconds=0.5)))
    >>> data.shape, sr
    ((8000,), 16000)
    """
    y = np.asarray(source.load(sr, seconds), dtype=np.float32)[: round(seconds * sr)]
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(y, -1.0, 1.0), sr, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
