"""Read TensorFlow checkpoint bundles (``PREFIX.index`` + ``PREFIX.data-NNNNN-of-NNNNN``)
without TensorFlow.

Why a reader of our own: no maintained Python library reads the TF bundle format without
importing TensorFlow itself (a >500 MB dependency), and the format is small and stable:

* ``PREFIX.index`` is an SSTable (the LevelDB table format): data blocks of key/value entries
  (keys share prefixes with the previous key; every ``restart`` entries a full key), each block
  followed by a 5-byte trailer (compression type, masked CRC32C), an index block pointing at the
  data blocks, and a 48-byte footer ending with a magic number. The entry with the empty key is
  a ``BundleHeaderProto`` (number of shards, byte order); every other key is a tensor name whose
  value is a ``BundleEntryProto`` (dtype, shape, shard, offset, size, masked CRC32C).
* ``PREFIX.data-00000-of-00001`` holds the raw little-endian tensor bytes at those offsets.

The protobuf messages are decoded by hand (a dozen lines of varint parsing) rather than with
the ``protobuf`` package, which mirsim does not otherwise need. Block checksums of the index are
always verified (it is a few kilobytes); tensor checksums are verified with the ``crc32c`` or
``google-crc32c`` package when one is installed, otherwise only with ``verify=True`` (pure
Python, a few MB/s), because a pure-Python checksum of every weight would slow each start.

Examples
--------
>>> from mirsim.features.musicnn.weights import find_checkpoint
>>> reader = CheckpointReader(find_checkpoint("MTT_musicnn"))  # doctest: +SKIP
>>> reader.entries["dense/kernel"].shape  # doctest: +SKIP
(1506, 200)
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirsim.errors import MirsimError

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_BLOCK_TRAILER_SIZE = 5
_CRC_MASK_DELTA = 0xA282EAD8

#: TensorFlow ``DataType`` enum values mirsim can read, as NumPy little-endian dtypes.
TF_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"), 2: np.dtype("<f8"), 3: np.dtype("<i4"), 4: np.dtype("u1"),
    5: np.dtype("<i2"), 6: np.dtype("i1"), 9: np.dtype("<i8"), 10: np.dtype("?"),
    17: np.dtype("<u2"), 19: np.dtype("<f2"), 22: np.dtype("<u4"), 23: np.dtype("<u8"),
}


class CheckpointError(MirsimError, ValueError):
    """A checkpoint file that is missing, truncated, corrupt or in an unsupported variant."""


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor of a bundle lives, as recorded in the ``.index`` file.

    ``crc32c`` is the unmasked CRC32C of the tensor's bytes.
    """

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int


# --- CRC32C (Castagnoli) -------------------------------------------------------------------

def _make_crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _make_crc_table()


def _crc32c_python(data: bytes) -> int:
    crc, table = 0xFFFFFFFF, _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


@functools.lru_cache(maxsize=1)
def _fast_crc32c():
    """A compiled CRC32C function when one of the optional packages is installed, else None."""
    try:
        import google_crc32c

        return lambda data: google_crc32c.value(bytes(data))
    except ImportError:
        pass
    try:
        import crc32c

        return crc32c.crc32c
    except ImportError:
        return None


def crc32c(data: bytes) -> int:
    """CRC32C of ``data`` (compiled if available, pure Python otherwise).

    Examples
    --------
    >>> hex(crc32c(b"123456789"))
    '0xe3069283'
    """
    fast = _fast_crc32c()
    return fast(data) if fast is not None else _crc32c_python(data)


def unmask_crc(masked: int) -> int:
    """Undo LevelDB/TensorFlow's CRC masking (``rot15(crc) + 0xa282ead8``).

    Examples
    --------
    >>> mask = lambda c: ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF
    >>> unmask_crc(mask(0x12345678)) == 0x12345678
    True
    """
    rot = (masked - _CRC_MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# --- protobuf wire format ------------------------------------------------------------------

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint at ``pos``; return (value, next position)."""
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise CheckpointError("malformed varint in checkpoint index")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def proto_fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs of a serialized protobuf message.

    Varint and fixed-width fields give ints, length-delimited fields give bytes.

    Examples
    --------
    >>> list(proto_fields(bytes([0x08, 0x96, 0x01, 0x12, 0x02, 0x68, 0x69])))
    [(1, 150), (2, b'hi')]
    """
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = bytes(buf[pos:pos + n]), pos + n
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire} in checkpoint index")
        if pos > len(buf):
            raise CheckpointError("truncated protobuf message in checkpoint index")
        yield field, value


def _parse_shape(buf: bytes) -> tuple[int, ...]:
    dims = []
    for field, value in proto_fields(buf):
        if field == 2:  # TensorShapeProto.dim
            size = next((v for f, v in proto_fields(value) if f == 1), 0)
            dims.append(_signed64(size))
        elif field == 3 and value:
            raise CheckpointError("tensor of unknown rank in checkpoint")
    return tuple(dims)


def parse_bundle_entry(name: str, buf: bytes) -> TensorEntry:
    """Decode a ``BundleEntryProto`` (the value of one tensor's key in the index).

    Examples
    --------
    >>> e = parse_bundle_entry("w", bytes([0x08, 0x01, 0x12, 0x04, 0x12, 0x02, 0x08, 0x03,
    ...                                    0x28, 0x0c]))
    >>> e.dtype, e.shape, e.offset, e.size
    (dtype('float32'), (3,), 0, 12)
    """
    fields: dict[str, int] = {"dtype": 0, "shard_id": 0, "offset": 0, "size": 0, "crc32c": 0}
    shape: tuple[int, ...] = ()
    names = {1: "dtype", 3: "shard_id", 4: "offset", 5: "size", 6: "crc32c"}
    for field, value in proto_fields(buf):
        if field == 2:
            shape = _parse_shape(value)
        elif field == 7:
            raise CheckpointError(f"tensor '{name}' is stored in slices (partitioned variable), "
                                  "which this reader does not support")
        elif field in names:
            fields[names[field]] = value
    if fields["dtype"] not in TF_DTYPES:
        raise CheckpointError(f"tensor '{name}' has TensorFlow dtype {fields['dtype']}, "
                              "which this reader does not support")
    return TensorEntry(name, TF_DTYPES[fields["dtype"]], shape, fields["shard_id"],
                       fields["offset"], fields["size"], unmask_crc(fields["crc32c"]))


# --- SSTable -------------------------------------------------------------------------------

def _read_block(data: bytes, offset: int, size: int, what: str) -> bytes:
    end = offset + size
    if end + _BLOCK_TRAILER_SIZE > len(data):
        raise CheckpointError(f"{what}: block at {offset} runs past the end of the file "
                              "(truncated?)")
    block, kind = data[offset:end], data[end]
    stored = struct.unpack_from("<I", data, end + 1)[0]
    if unmask_crc(stored) != _crc32c_python(block + bytes([kind])):
        raise CheckpointError(f"{what}: checksum mismatch in block at {offset} (corrupt file)")
    if kind != 0:  # 1 = snappy; TensorFlow writes checkpoint indexes uncompressed
        raise CheckpointError(f"{what}: compressed table blocks (type {kind}) are not supported")
    return block


def _block_entries(block: bytes, what: str) -> Iterator[tuple[bytes, bytes]]:
    """Key/value pairs of one table block, keys rebuilt from their shared prefixes."""
    if len(block) < 4:
        raise CheckpointError(f"{what}: table block too short")
    n_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 - 4 * n_restarts
    if limit < 0:
        raise CheckpointError(f"{what}: bad restart array in table block")
    pos, key = 0, b""
    while pos < limit:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        n_value, pos = _varint(block, pos)
        if shared > len(key) or pos + unshared + n_value > limit:
            raise CheckpointError(f"{what}: malformed entry in table block")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + n_value]
        pos += n_value


def _handle(buf: bytes, pos: int = 0) -> tuple[int, int, int]:
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return offset, size, pos


def read_table(path: str | Path) -> Iterator[tuple[bytes, bytes]]:
    """Every key/value pair of an SSTable file, in key order.

    Raises
    ------
    CheckpointError
        Missing, truncated or corrupt file.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint index {path}: {exc.strerror}") from None
    if len(data) < _FOOTER_SIZE or struct.unpack_from("<Q", data, len(data) - 8)[0] != _TABLE_MAGIC:
        raise CheckpointError(f"{path}: not a TensorFlow checkpoint index (bad footer; "
                              "truncated or corrupt?)")
    footer = data[len(data) - _FOOTER_SIZE:]
    _, _, pos = _handle(footer)  # the metaindex block (empty in checkpoints)
    index_offset, index_size, _ = _handle(footer, pos)
    index = _read_block(data, index_offset, index_size, str(path))
    for _, handle in _block_entries(index, str(path)):
        offset, size, _ = _handle(handle)
        yield from _block_entries(_read_block(data, offset, size, str(path)), str(path))


# --- bundle --------------------------------------------------------------------------------

class CheckpointReader:
    """The tensors of a TensorFlow checkpoint bundle, read without TensorFlow.

    Parameters
    ----------
    prefix : str or Path
        The bundle's prefix: ``PREFIX.index`` and ``PREFIX.data-*`` must exist. A folder
        stands for the prefix ``FOLDER/`` (files ``.index`` and ``.data-*`` in it), the layout
        of musicnn's checkpoints.

    Attributes
    ----------
    entries : dict of str to TensorEntry
        Every tensor of the bundle, by name.

    Examples
    --------
    >>> from mirsim.features.musicnn.weights import find_checkpoint
    >>> r = CheckpointReader(find_checkpoint("MTT_musicnn"))  # doctest: +SKIP
    >>> r.read("dense_1/bias").shape  # doctest: +SKIP
    (50,)
    """

    def __init__(self, prefix: str | Path):
        self.prefix = str(prefix)
        if Path(prefix).is_dir():
            self.prefix = os.path.join(str(prefix), "")
        self.num_shards = 1
        self.entries: dict[str, TensorEntry] = {}
        for key, value in read_table(self.prefix + ".index"):
            if key == b"":
                self._read_header(value)
            else:
                name = key.decode("utf-8")
                self.entries[name] = parse_bundle_entry(name, value)

    def _read_header(self, value: bytes) -> None:
        for field, v in proto_fields(value):
            if field == 1:
                self.num_shards = int(v)
            elif field == 2 and v != 0:
                raise CheckpointError(f"{self.prefix}.index: big-endian checkpoints are not "
                                      "supported")

    def data_path(self, shard_id: int) -> Path:
        """The data file holding shard ``shard_id``."""
        return Path(f"{self.prefix}.data-{shard_id:05d}-of-{self.num_shards:05d}")

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def read(self, name: str, verify: bool | None = None) -> np.ndarray:
        """The tensor called ``name`` as a NumPy array of its dtype and shape.

        Parameters
        ----------
        name : str
            Tensor (variable) name, e.g. ``"dense/kernel"``.
        verify : bool, optional
            Check the tensor's CRC32C. ``None`` (default) checks when a compiled CRC32C
            package is installed; ``True`` always checks (pure Python if need be).

        Raises
        ------
        KeyError
            No tensor of that name.
        CheckpointError
            The data file is missing, shorter than the index says, or the checksum differs.
        """
        entry = self.entries[name]
        path = self.data_path(entry.shard_id)
        try:
            with open(path, "rb") as f:
                f.seek(entry.offset)
                raw = f.read(entry.size)
        except OSError as exc:
            raise CheckpointError(f"cannot read checkpoint data {path}: {exc.strerror}") from None
        if len(raw) != entry.size:
            raise CheckpointError(f"{path}: tensor '{name}' needs bytes {entry.offset}.."
                                  f"{entry.offset + entry.size}, the file is shorter (truncated?)")
        n_items = int(np.prod(entry.shape, dtype=np.int64))
        if n_items * entry.dtype.itemsize != entry.size:
            raise CheckpointError(f"{path}: tensor '{name}' has {entry.size} bytes, its shape "
                                  f"{entry.shape} and dtype {entry.dtype} need "
                                  f"{n_items * entry.dtype.itemsize}")
        fast = _fast_crc32c()
        if verify or (verify is None and fast is not None):
            actual = fast(raw) if fast is not None else _crc32c_python(raw)
            if actual != entry.crc32c:
                raise CheckpointError(f"{path}: checksum mismatch in tensor '{name}' (corrupt file)")
        return np.frombuffer(raw, dtype=entry.dtype).reshape(entry.shape).copy()
