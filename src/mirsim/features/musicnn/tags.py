"""The tag vocabularies of the musicnn models (the order of their 50 outputs).

MagnaTagATune (MTT) and the Million Song Dataset's Last.fm tags (MSD), in the order the
checkpoints of the ``musicnn`` package (0.1.0) output them.
"""

from __future__ import annotations

MTT_TAGS: tuple[str, ...] = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast",
    "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera",
    "male", "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman",
    "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man", "classic", "choir",
    "voice", "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello",
    "no voice", "weird", "country", "metal", "female voice", "choral",
)

MSD_TAGS: tuple[str, ...] = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists",
    "classic rock", "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s",
    "chill", "instrumental", "punk", "oldies", "blues", "hard rock", "ambient", "acoustic",
    "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country",
    "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock",
    "60s", "rnb", "indie pop", "sad", "House", "happy",
)


def tags_of(model: str) -> tuple[str, ...]:
    """The tags a model outputs, by its name's data-set prefix.

    Examples
    --------
    >>> tags_of("MSD_musicnn")[:3]
    ('rock', 'pop', 'alternative')
    >>> len(tags_of("MTT_vgg"))
    50
    """
    if model.startswith("MTT"):
        return MTT_TAGS
    if model.startswith("MSD"):
        return MSD_TAGS
    raise ValueError(f"model '{model}' is neither an MTT nor an MSD model")
