"""The MIDI songs of Debian packages: the music of ``freedoom`` and ``freedm`` (standard MIDI
lumps inside their WAD files) and the ``.mid`` files of ``simutrans-data`` and
``openttd-openmsx``.

Each song (:class:`MidiSong`) keeps its package, its file or lump name
(``freedoom1.wad:D_E1M1``), the licence of its package (from the package's ``copyright``
file: :func:`~mirsim.datasets.soundtracks.package_licence`) and its bytes. A song whose bytes
repeat an earlier one (``freedm`` shares pieces with ``freedoom2``) is left out, and so is a
WAD music lump in Doom's own MUS format (no maintained Python library converts it); each left
out with a reason (:class:`Skipped`).

>>> wad = build_wad({"D_RUNNIN": b"MThd" + bytes(10), "D_OLD": b"MUS\\x1a" + bytes(4),
...                  "PLAYPAL": bytes(3)})
>>> music, skipped = wad_music(wad)
>>> [name for name, _ in music], [s.reason for s in skipped]
(['D_RUNNIN'], ['MUS-format music lump (no maintained MUS-to-MIDI converter)'])
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from mirsim.datasets.soundtracks import package_files, package_licence
from mirsim.errors import DataError

__all__ = ["INSTALL", "PACKAGES", "MidiSong", "Skipped", "build_wad", "midi_sources",
           "package_songs", "source_path", "wad_lumps", "wad_music"]

#: Debian packages whose music is MIDI.
PACKAGES = ("freedoom", "freedm", "simutrans-data", "openttd-openmsx")

INSTALL = "apt-get install " + " ".join(PACKAGES)

#: Magic numbers: WAD files, standard MIDI files, Doom's MUS format.
WAD_MAGICS = (b"IWAD", b"PWAD")
MIDI_MAGIC = b"MThd"
MUS_MAGIC = b"MUS\x1a"
#: WAD lumps of music are named ``D_<name>``.
MUSIC_LUMP_PREFIX = "D_"
#: A WAD header (magic, lump count, directory offset) and one directory entry
#: (offset, size, name of 8 bytes), little-endian.
_HEADER = struct.Struct("<4sii")
_ENTRY = struct.Struct("<ii8s")


@dataclass(frozen=True)
class MidiSong:
    """A standard MIDI file from a Debian package."""

    package: str
    name: str
    licence: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class Skipped:
    """A song left out, and why."""

    package: str
    name: str
    reason: str


# -- WAD files ---------------------------------------------------------------------------------
# Doom's WAD format is parsed here by hand: a 12-byte header and a table of 16-byte entries.
# No maintained Python library reads it (the old ones, e.g. omgifol, are unmaintained).
def wad_lumps(data: bytes) -> list[tuple[str, bytes]]:
    """The lumps of a WAD file, as ``(name, bytes)`` in directory order.

    Raises
    ------
    DataError
        Not a WAD file (no ``IWAD``/``PWAD`` magic), or its directory points outside it.

    Examples
    --------
    >>> wad_lumps(build_wad({"A": b"xy", "B": b""}))
    [('A', b'xy'), ('B', b'')]
    >>> wad_lumps(b"PK\\x03\\x04" + bytes(8))
    Traceback (most recent call last):
    ...
    mirsim.errors.DataError: not a WAD file (magic b'PK\\x03\\x04')
    """
    if len(data) < _HEADER.size:
        raise DataError(f"not a WAD file ({len(data)} bytes, shorter than its header)")
    magic, count, directory = _HEADER.unpack_from(data, 0)
    if magic not in WAD_MAGICS:
        raise DataError(f"not a WAD file (magic {magic!r})")
    if count < 0 or directory < 0 or directory + count * _ENTRY.size > len(data):
        raise DataError(f"corrupt WAD file: a directory of {count} lumps at {directory} "
                        f"in {len(data)} bytes")
    lumps = []
    for i in range(count):
        offset, size, raw = _ENTRY.unpack_from(data, directory + i * _ENTRY.size)
        name = raw.split(b"\0", 1)[0].decode("ascii", errors="replace")
        if offset < 0 or size < 0 or offset + size > len(data):
            raise DataError(f"corrupt WAD file: lump {name} at {offset}+{size} "
                            f"in {len(data)} bytes")
        lumps.append((name, data[offset:offset + size]))
    return lumps


def build_wad(lumps: dict[str, bytes], magic: bytes = b"PWAD") -> bytes:
    """A WAD file of ``lumps`` (name -> bytes; names of at most 8 ASCII characters).

    Examples
    --------
    >>> build_wad({})[:4], len(build_wad({}))
    (b'PWAD', 12)
    """
    body, entries, offset = b"", b"", _HEADER.size
    for name, payload in lumps.items():
        entries += _ENTRY.pack(offset, len(payload), name.encode("ascii"))
        body += payload
        offset += len(payload)
    return _HEADER.pack(magic, len(lumps), offset) + body + entries


def wad_music(data: bytes, package: str = "", file: str = ""
              ) -> tuple[list[tuple[str, bytes]], list[Skipped]]:
    """The standard MIDI music lumps (``D_*``) of a WAD file, and the music lumps left out
    (MUS format, or neither MUS nor MIDI) with their reasons."""
    music, skipped = [], []
    for name, payload in wad_lumps(data):
        if not name.startswith(MUSIC_LUMP_PREFIX):
            continue
        if payload.startswith(MIDI_MAGIC):
            music.append((name, payload))
        elif payload.startswith(MUS_MAGIC):
            skipped.append(Skipped(package, _lump_name(file, name),
                                   "MUS-format music lump (no maintained MUS-to-MIDI converter)"))
        else:
            skipped.append(Skipped(package, _lump_name(file, name),
                                   f"music lump of an unknown format (starts {payload[:4]!r})"))
    return music, skipped


def _lump_name(file: str, lump: str) -> str:
    return f"{file}:{lump}" if file else lump


# -- packages ----------------------------------------------------------------------------------
def package_songs(package: str) -> tuple[list[MidiSong], list[Skipped]]:
    """The MIDI songs of one Debian package (its ``.wad``, ``.mid`` and ``.midi`` files, in
    path order), and what was left out.

    Raises
    ------
    DataError
        The package is not installed (the message gives the ``apt-get`` command).
    """
    files = sorted(f for f in package_files(package, "the multitrack data set", INSTALL)
                   if f.suffix.lower() in (".wad", ".mid", ".midi") and f.is_file())
    licence = package_licence(package)
    songs: list[MidiSong] = []
    skipped: list[Skipped] = []
    for path in files:
        data = path.read_bytes()
        if path.suffix.lower() != ".wad":
            songs.append(MidiSong(package, path.name, licence, data))
            continue
        try:
            music, left_out = wad_music(data, package, path.name)
        except DataError as exc:
            skipped.append(Skipped(package, path.name, str(exc)))
            continue
        songs += [MidiSong(package, _lump_name(path.name, n), licence, d) for n, d in music]
        skipped += left_out
    return songs, skipped


def midi_sources(packages: Sequence[str] = PACKAGES) -> tuple[list[MidiSong], list[Skipped]]:
    """The MIDI songs of ``packages`` (in that order), each distinct one once; a song whose
    bytes repeat an earlier one is skipped (the reason names the first)."""
    songs: list[MidiSong] = []
    skipped: list[Skipped] = []
    seen: dict[str, MidiSong] = {}
    for package in packages:
        found, left_out = package_songs(package)
        skipped += left_out
        for song in found:
            first = seen.setdefault(song.sha256, song)
            if first is song:
                songs.append(song)
            else:
                skipped.append(Skipped(song.package, song.name,
                                       f"the same MIDI as {first.package} {first.name}"))
    return songs, skipped


def source_path(song: MidiSong) -> str:
    """Where a song came from, for the metadata: ``package:name``.

    Examples
    --------
    >>> source_path(MidiSong("freedoom", "freedoom1.wad:D_E1M1", "x", b""))
    'freedoom:freedoom1.wad:D_E1M1'
    """
    return f"{song.package}:{song.name}"

