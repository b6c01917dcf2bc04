"""The safe default serializer of checkpoint stores: msgpack plus an allowlist of types.

Plain data (None, bool, int of any size, float, str, bytes, list, dict) is msgpack; everything
else travels as a msgpack *ext type* whose payload is again msgpack: tuples, sets, frozensets,
datetimes (naive and tz-aware), dates, times, timedeltas, UUIDs, Decimals, complex
numbers, pathlib paths, numpy arrays and scalars, pandas DataFrames and Series, and instances of
classes *registered* with the serializer (Enums, dataclasses, pydantic v2 models, NamedTuples,
or any class with an ``encode``/``decode`` pair). ``bytearray`` and ``memoryview`` read back as
``bytes`` (msgpack packs them natively).

Reading is safe by construction: a class is found by its registered name only, nothing is imported
by a name found in the data, and pickle data is refused unless the serializer was created with
``allow_pickle=True``. numpy and pandas are imported only to read data that holds them.

Limits, the same on writing and on reading, so that a value that was stored can be read back by any
process, and bytes that were not written by us fail with :class:`CheckpointError` instead of
crashing the reader or taking time and memory out of proportion to their size:

- **Nesting**: non-plain values (tuples, sets, registered objects, numpy and pandas values, ...)
  nest at most :data:`MAX_NESTING` (100) levels inside one another; lists and dicts in between do
  not count (msgpack itself allows them 500 levels). Each such level is an ext payload read by a
  nested msgpack call, and each of msgpack's C unpackers takes ~40 KB of C stack: a few hundred
  levels overflow a thread's stack and kill the process (SIGSEGV, not an exception). Past the first
  few levels the reader switches to msgpack's heap-allocated ``Unpacker`` (~1 KB of stack a level).
- **Hash floods**: only ``str`` and ``bytes`` hash differently in every process; ints, floats,
  tuples and most other keys do not, so bytes can be crafted whose dict keys (or set items) all
  share one hash and take quadratic time to insert. Maps whose keys are all strings are built by
  msgpack at full speed; the others, sets and pandas MultiIndex levels are refused when more than
  16 distinct keys share one hash (real data has at most a couple: ``hash(-1) == hash(-2)``).
- **Shapes**: a pandas column must be an array as long as its index (a scalar would be broadcast
  to any length), and an array of zero-size items (dtype ``V0``) holds at most 65,536 of them
  (anything else takes at least one stored byte per item).

Example:
    >>> ser = Serializer()
    >>> ser.register(Doc)                         # a dataclass, pydantic model or Enum
    >>> ser.loads(ser.dumps({"docs": [Doc("a")], "seen": {1, 2}}))
    {'docs': [Doc(text='a')], 'seen': {1, 2}}
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import functools
import inspect
import operator
import os
import pathlib
import pickle
import sys
import threading
import typing
import uuid
import zoneinfo
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import msgpack
import typing_extensions

from agentgraph_nb.errors import CheckpointError

__all__ = ["MAX_NESTING", "Serializer", "default_serializer"]

T = TypeVar("T", bound=type)

# Ext type codes. They are part of the on-disk format: never renumber, only append.
_PICKLE = 0
_TUPLE = 1
_SET = 2
_FROZENSET = 3
_BIGINT = 4
_DATETIME = 5
_DATE = 6
_TIME = 7
_TIMEDELTA = 8
_UUID = 9
_DECIMAL = 10
_ENUM = 11
_COMPLEX = 12
_PATH = 13
_OBJECT = 14
_NDARRAY = 15
_NPSCALAR = 16
_DATAFRAME = 17
_SERIES = 18

MAX_NESTING = 100
"""How many non-plain values (tuples, sets, objects, ...) may nest inside one another in a
stored value (lists and dicts in between do not count): deeper values are refused by
:meth:`Serializer.dumps`, and by :meth:`Serializer.loads` in bytes made by hand."""

_FAST_LEVELS = 4  # ext levels read with msgpack.unpackb (~40 KB of C stack each); deeper: Unpacker
_MAX_SAME_HASH = 16  # distinct dict keys or set items sharing one hash value, at most
_MAX_EMPTY_ITEMS = 1 << 16  # items of a numpy array whose items take no bytes (dtype V0), at most

_packb = msgpack.packb
_unpackb = msgpack.unpackb
_Packer = msgpack.Packer
# msgpack.ExtType(code, data) checks its arguments in Python (~2 µs); ours are always an int code
# and bytes, so the tuple is built directly (the packer needs the exact type, which this is).
_tnew = tuple.__new__
_ET = msgpack.ExtType
_KEEP_BUFFER = 1 << 16  # a packer whose buffer grew past this (a large value) is not kept
# Payloads that hold only plain values (datetimes, times, timedeltas, dates, complex numbers,
# paths): read without an ext hook (an ext value in them is corrupt data, and fails to build).
_leaf_unpackb = functools.partial(_unpackb, unicode_errors="surrogatepass")
_UTC = _dt.timezone.utc
_new_object = object.__new__
_set_attr = object.__setattr__
_UUID_cls = uuid.UUID
_uuid_unknown = uuid.SafeUUID.unknown


def _dec_uuid(b: bytes) -> uuid.UUID:
    if len(b) != 16:
        raise ValueError(f"a UUID takes 16 bytes, not {len(b)}")
    u = _new_object(_UUID_cls)  # what UUID(bytes=b) does, without its argument parsing
    _set_attr(u, "int", int.from_bytes(b, "big"))
    _set_attr(u, "is_safe", _uuid_unknown)
    return u


_Unpacker = msgpack.Unpacker
_first = operator.itemgetter(0)


class _Local(threading.local):
    """Per thread: the C stack and the decoding mode are per thread."""

    depth = 0  # ext values being encoded or decoded, one inside another
    lenient = False  # this loads() builds maps with non-string keys itself, checking their hashes


_local = _Local()


class _LeafPacker(threading.local):
    """Per thread: a packer for payloads of plain values only (no hook, so never re-entered)."""

    def __init__(self) -> None:
        self.pack = _Packer(
            use_bin_type=True, strict_types=True, unicode_errors="surrogatepass", buf_size=256
        ).pack


_leaf = _LeafPacker()


def _leaf_pack(obj: Any) -> bytes:
    out: bytes = _leaf.pack(obj)
    return out


class _Packers(threading.local):
    """A serializer's msgpack packers, per thread: making one allocates a 256 KiB buffer, which
    cost more than packing a small value (~9 µs of the ~10 µs of each nested ext payload). One
    for the top level and one per ext nesting level, since a packer cannot be re-entered and the
    payload of a nested value is packed while the value around it is being packed."""

    def __init__(self) -> None:
        self.top: Any = None
        self.inner: list[Any] = []


_NATIVE = frozenset({type(None), bool, int, float, str, bytes})
_PANDAS_EXT_DTYPES = frozenset(
    {"str", "string", "boolean", "Float32", "Float64"}
    | {f"{s}Int{b}" for s in ("", "U") for b in (8, 16, 32, 64)}
)


class _Unsupported(Exception):
    """Raised inside msgpack's ``default`` hook for a value outside the allowlist."""

    def __init__(self, obj: Any, reason: str, cause: BaseException | None = None) -> None:
        super().__init__(reason)
        self.obj = obj
        self.reason = reason
        self.cause = cause


@dataclasses.dataclass(frozen=True)
class _Entry:
    """A registered class: its stored name and how to take it apart and rebuild it."""

    name: str
    cls: type
    kind: str  # "enum" | "dataclass" | "pydantic" | "namedtuple" | "custom"
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]
    children: Callable[[Any], Iterable[tuple[str, Any]]]


def _type_name(tp: type) -> str:
    mod = getattr(tp, "__module__", None)
    qual = getattr(tp, "__qualname__", repr(tp))
    return qual if mod in (None, "builtins") else f"{mod}.{qual}"


def _short_repr(obj: Any, limit: int = 40) -> str:
    try:
        r = repr(obj)
    except Exception:
        r = f"<{type(obj).__qualname__}>"
    return r if len(r) <= limit else r[: limit - 3] + "..."


def _key_path(path: str, key: Any) -> str:
    if type(key) is str:
        return path + '["' + key.replace("\\", "\\\\").replace('"', '\\"') + '"]'
    return f"{path}[{_short_repr(key)}]"


def _is_pydantic_model(cls: Any) -> bool:
    pyd = sys.modules.get("pydantic")  # a model class means pydantic is already imported
    return pyd is not None and isinstance(cls, type) and issubclass(cls, pyd.BaseModel)


def _is_namedtuple(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")


# -- at rest: compression and encryption ------------------------------------------------------
# A sealed record: 0xC1 (a byte msgpack never uses, so plain records are told apart by their
# first byte), a format version, flags (bit 0: zstd, bit 1: AES-GCM); when encrypted, the key
# id's length and the key id (UTF-8), then a 12-byte nonce; then the body (the ciphertext with
# its 16-byte tag, of the msgpack bytes or of their zstd frame). Everything before the nonce,
# plus the store's context (thread, checkpoint, field), is authenticated as associated data.
_SEAL_MAGIC = 0xC1
_SEAL_VERSION = 1
_ZSTD = 1
_AES = 2
_NONCE = 12
_MAX_INFLATED = 1 << 31  # bytes a compressed record may declare, at most


def _zstd() -> Any:
    from agentgraph_nb._lazy import requires_extra

    with requires_extra("Serializer(compression='zstd')"):
        import zstandard
    return zstandard


def _aesgcm() -> Any:
    from agentgraph_nb._lazy import requires_extra

    with requires_extra("Serializer(keys=...) (AES-GCM encryption)"):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    return AESGCM


class _Sealer:
    """Compresses and encrypts the bytes of a :class:`Serializer` (see ``_SEAL_MAGIC``)."""

    def __init__(
        self,
        compression: str | None,
        threshold: int,
        level: int,
        keys: typing.Mapping[str, bytes],
        active: str | None,
        allow_plaintext: bool,
    ) -> None:
        if compression not in (None, "zstd"):
            raise ValueError(f"compression={compression!r} is not supported; use 'zstd' or None")
        if not isinstance(threshold, int) or threshold < 0:
            raise ValueError(f"compression_threshold must be an int >= 0, got {threshold!r}")
        self.compression = compression
        self.threshold = threshold
        self.allow_plaintext = allow_plaintext
        self._compress: Callable[[bytes], bytes] | None = None
        self._decompress: Any = None
        if compression == "zstd":
            zstd = _zstd()
            self._compress = zstd.ZstdCompressor(level=level, write_content_size=True).compress
            self._zstd = zstd
        self.keys: dict[str, Any] = {}
        for kid, key in keys.items():
            if not isinstance(kid, str) or not kid or len(kid.encode("utf-8")) > 255:
                raise ValueError(f"key id {kid!r} must be a non-empty str of at most 255 bytes")
            if not isinstance(key, (bytes, bytearray)) or len(key) not in (16, 24, 32):
                raise ValueError(
                    f"key {kid!r} must be 16, 24 or 32 bytes (AES-128/192/256), got "
                    f"{len(key) if isinstance(key, (bytes, bytearray)) else type(key).__name__}"
                    "; make one with os.urandom(32)"
                )
            self.keys[kid] = _aesgcm()(bytes(key))
        if self.keys:
            if active is None:
                if len(self.keys) > 1:
                    raise ValueError(
                        f"several keys ({', '.join(map(repr, self.keys))}): say which one encrypts "
                        "new records with active_key="
                    )
                active = next(iter(self.keys))
            if active not in self.keys:
                raise ValueError(
                    f"active_key={active!r} is not one of the keys ({', '.join(map(repr, self.keys))})"
                )
        elif active is not None:
            raise ValueError(f"active_key={active!r} names no key: keys= is empty")
        self.active = active
        self._header = b""
        self._cipher: Any = None
        if active is not None:
            kid_b = active.encode("utf-8")
            self._header = bytes([_SEAL_MAGIC, _SEAL_VERSION, _AES]) + bytes([len(kid_b)]) + kid_b
            self._header_z = bytes([_SEAL_MAGIC, _SEAL_VERSION, _AES | _ZSTD, len(kid_b)]) + kid_b
            self._cipher = self.keys[active]

    # -- writing ----------------------------------------------------------------------------
    def seal(self, data: bytes, context: str) -> bytes:
        flags = 0
        if self._compress is not None and len(data) > self.threshold:
            data = self._compress(data)
            flags = _ZSTD
        if self._cipher is None:
            return bytes([_SEAL_MAGIC, _SEAL_VERSION, flags]) + data if flags else data
        header = self._header_z if flags else self._header
        nonce = os.urandom(_NONCE)
        aad = header + b"\0" + context.encode("utf-8", "surrogatepass")
        return header + nonce + self._cipher.encrypt(nonce, data, aad)

    def is_current(self, data: bytes) -> bool:
        """Whether ``data`` is sealed as :meth:`seal` seals now (the key; compression is not
        redone for a record whose size decided otherwise)."""
        if self.active is None:
            return _Sealer.key_id_of(data) is None
        return _Sealer.key_id_of(data) == self.active

    # -- reading ----------------------------------------------------------------------------
    @staticmethod
    def is_sealed(data: bytes) -> bool:
        return bool(data) and data[0] == _SEAL_MAGIC

    @staticmethod
    def _parse(data: bytes) -> tuple[int, str | None, int]:
        """``(flags, key id or None, offset of the nonce or body)``."""
        if len(data) < 3 or data[1] != _SEAL_VERSION:
            version = data[1] if len(data) > 1 else None
            raise CheckpointError(
                f"cannot read stored data: it is sealed in format version {version!r}, which this "
                f"agentgraph_nb does not know (it reads version {_SEAL_VERSION}): written by a "
                "newer agentgraph_nb, or corrupt"
            )
        flags = data[2]
        if flags & ~(_ZSTD | _AES):
            raise CheckpointError(
                f"cannot read stored data: unknown flags {flags:#x} in its header"
            )
        if not flags & _AES:
            return flags, None, 3
        n = data[3] if len(data) > 3 else 0
        kid_b = bytes(data[4 : 4 + n])
        if n == 0 or len(kid_b) != n:
            raise CheckpointError("cannot read stored data: its encryption header is truncated")
        return flags, kid_b.decode("utf-8", "replace"), 4 + n

    @staticmethod
    def key_id_of(data: bytes) -> str | None:
        if not _Sealer.is_sealed(data):
            return None
        return _Sealer._parse(data)[1]

    @staticmethod
    def open_without_sealer(data: bytes) -> bytes:
        flags, kid, off = _Sealer._parse(data)
        if kid is not None:
            raise CheckpointError(
                f"cannot read stored data: it is encrypted with key {kid!r}, and this serializer "
                f"has no keys; pass Serializer(keys={{{kid!r}: ...}}) to read it"
            )
        body = bytes(data[off:])
        return _Sealer._inflate(body) if flags & _ZSTD else body

    def open(self, data: bytes, context: str) -> bytes:
        flags, kid, off = _Sealer._parse(data)
        body = bytes(data[off:])
        if kid is not None:
            cipher = self.keys.get(kid)
            if cipher is None:
                have = ", ".join(map(repr, self.keys)) or "none"
                raise CheckpointError(
                    f"cannot read stored data: it is encrypted with key {kid!r}, which this "
                    f"serializer does not have (its keys: {have}); add it to Serializer(keys=...)"
                )
            if len(body) < _NONCE + 16:
                raise CheckpointError(
                    f"cannot read stored data encrypted with key {kid!r}: it is truncated"
                )
            aad = bytes(data[:off]) + b"\0" + context.encode("utf-8", "surrogatepass")
            try:
                body = cipher.decrypt(body[:_NONCE], body[_NONCE:], aad)
            except Exception as exc:  # cryptography's InvalidTag
                raise CheckpointError(
                    f"cannot decrypt stored data with key {kid!r}: the key is wrong (another key "
                    "under the same id), or the record was altered or moved from another thread "
                    "or checkpoint"
                ) from exc
        elif self.keys and not self.allow_plaintext:
            raise CheckpointError(
                "refusing to read a record that is not encrypted while this serializer encrypts "
                f"(keys {', '.join(map(repr, self.keys))}); pass allow_plaintext=True to read a "
                "store written before encryption was turned on, and run store.reencrypt()"
            )
        return _Sealer._inflate(body) if flags & _ZSTD else body

    @staticmethod
    def _inflate(body: bytes) -> bytes:
        zstd = _zstd()
        try:
            size = zstd.frame_content_size(body)
        except zstd.ZstdError as exc:
            raise CheckpointError(
                f"cannot read stored data: its zstd frame is corrupt ({exc})"
            ) from exc
        if size < 0 or size > _MAX_INFLATED:
            raise CheckpointError(
                "cannot read stored data: its zstd frame does not declare a size up to "
                f"{_MAX_INFLATED:,} bytes (agentgraph_nb always writes one): corrupt or made by hand"
            )
        try:
            return zstd.ZstdDecompressor().decompress(body, max_output_size=size)
        except zstd.ZstdError as exc:
            raise CheckpointError(
                f"cannot read stored data: its zstd frame is corrupt ({exc})"
            ) from exc


class Serializer:
    """Turns checkpoint values into bytes and back, without pickle unless asked to.

    Args:
        allow_pickle: opt in to pickle for values outside the allowlist, and to reading
            pickled values. Reading pickle runs code chosen by whoever wrote the data: enable
            it only for stores that nobody else can write.
        compression: ``"zstd"`` compresses records larger than ``compression_threshold``
            bytes (extra ``zstd``); None (the default) stores them as they are. Readers
            decompress whatever they find, whatever this setting.
        compression_threshold: records up to this many bytes stay uncompressed.
        compression_level: the zstd level (3 is zstd's default; 1 is faster, 19 smaller).
        keys: encryption keys by id, ``{"k2": key2, "k1": key1}``, each 16, 24 or 32 random
            bytes (``os.urandom(32)``): records are encrypted with AES-GCM (extra ``crypto``),
            and each names the id of its key, so old keys still decrypt after a rotation. The
            store's context (thread, checkpoint, field) is authenticated with each record: a
            record altered, or copied to another place, fails to decrypt.
        active_key: the id of the key new records are encrypted with (needed with several keys).
        allow_plaintext: with ``keys``, still read records that are not encrypted (a store
            written before encryption was turned on; ``store.reencrypt()`` then encrypts them).
            Off by default: whoever can write the store could otherwise slip in plain records.

    Raises:
        ValueError: a key that is not 16, 24 or 32 bytes, an ``active_key`` that is not one of
            ``keys``, several keys and no ``active_key``, or an unknown ``compression``.
        MissingDependencyError: ``compression="zstd"`` without the ``zstd`` extra, or keys
            without the ``crypto`` extra.

    Attributes:
        allow_pickle: whether pickle is used and accepted.

    Example:
        >>> ser = Serializer()
        >>> ser.register_from_annotations(State)   # every dataclass/pydantic/Enum it mentions
        >>> blob = ser.dumps(state)
        >>> ser.loads(blob) == state
        True
        >>> secure = Serializer(compression="zstd", keys={"k2": key2, "k1": key1}, active_key="k2")
        >>> app = graph.compile(checkpointer=SqliteCheckpointer("runs.db", serializer=secure))
    """

    def __init__(
        self,
        *,
        allow_pickle: bool = False,
        compression: str | None = None,
        compression_threshold: int = 1024,
        compression_level: int = 3,
        keys: typing.Mapping[str, bytes] | None = None,
        active_key: str | None = None,
        allow_plaintext: bool = False,
    ) -> None:
        self.allow_pickle = allow_pickle
        self._sealer: _Sealer | None = None
        if compression is not None or keys:
            self._sealer = _Sealer(
                compression,
                compression_threshold,
                compression_level,
                keys or {},
                active_key,
                allow_plaintext,
            )
        elif active_key is not None:
            raise ValueError(f"active_key={active_key!r} names no key: keys= is empty")
        self._lock = threading.Lock()
        self._by_name: dict[str, _Entry] = {}
        self._default = self._default_hook
        self._packers = _Packers()
        self._encoders: dict[type, Callable[[Any], Any]] = {
            tuple: self._enc_tuple,
            set: self._enc_set,
            frozenset: self._enc_frozenset,
            int: self._enc_bigint,
            _dt.datetime: self._enc_datetime,
            _dt.date: self._enc_date,
            _dt.time: self._enc_time,
            _dt.timedelta: self._enc_timedelta,
            uuid.UUID: self._enc_uuid,
            decimal.Decimal: self._enc_decimal,
            complex: self._enc_complex,
            pathlib.PurePosixPath: self._enc_path,
            pathlib.PureWindowsPath: self._enc_path,
            pathlib.PosixPath: self._enc_path,
            pathlib.WindowsPath: self._enc_path,
        }
        # values whose payload holds only plain values: packed and read without nesting
        leaf_types = (
            int,
            _dt.datetime,
            _dt.date,
            _dt.time,
            _dt.timedelta,
            uuid.UUID,
            decimal.Decimal,
            complex,
            pathlib.PurePosixPath,
            pathlib.PureWindowsPath,
            pathlib.PosixPath,
            pathlib.WindowsPath,
        )
        self._leaf_encoders = {t: self._encoders[t] for t in leaf_types}
        self._decoders: dict[int, Callable[[bytes], Any]] = {
            _PICKLE: self._dec_pickle,
            _TUPLE: lambda b: tuple(self._unpack(b)),
            _SET: lambda b: set(_unflooded(self._unpack(b), "set items")),
            _FROZENSET: lambda b: frozenset(_unflooded(self._unpack(b), "set items")),
            _BIGINT: lambda b: int.from_bytes(b, "big", signed=True),
            _DATETIME: self._dec_datetime,
            _DATE: lambda b: _dt.date.fromordinal(_leaf_unpackb(b)),
            _TIME: self._dec_time,
            _TIMEDELTA: self._dec_timedelta,
            _UUID: _dec_uuid,
            _DECIMAL: lambda b: decimal.Decimal(b.decode("ascii")),
            _ENUM: self._dec_enum,
            _COMPLEX: self._dec_complex,
            _PATH: self._dec_path,
            _OBJECT: self._dec_object,
            _NDARRAY: self._dec_ndarray,
            _NPSCALAR: self._dec_npscalar,
            _DATAFRAME: self._dec_dataframe,
            _SERIES: self._dec_series,
        }

        self._leaf_decoders = {
            c: self._decoders[c]
            for c in (
                _BIGINT,
                _DATETIME,
                _DATE,
                _TIME,
                _TIMEDELTA,
                _UUID,
                _DECIMAL,
                _COMPLEX,
                _PATH,
            )
        }

    def __repr__(self) -> str:
        extra = ""
        sealer = self._sealer
        if sealer is not None:
            if sealer.compression:
                extra += f", compression={sealer.compression!r}"
            if sealer.keys:
                extra += (
                    f", keys=[{', '.join(map(repr, sealer.keys))}], active_key={sealer.active!r}"
                )
        return (
            f"Serializer(allow_pickle={self.allow_pickle}{extra}, registered={len(self._by_name)})"
        )

    @property
    def encrypted(self) -> bool:
        """Whether :meth:`dumps` encrypts (``keys=`` given)."""
        return self._sealer is not None and bool(self._sealer.keys)

    @property
    def active_key(self) -> str | None:
        """The id of the key new records are encrypted with (None: no encryption)."""
        return self._sealer.active if self._sealer is not None and self._sealer.keys else None

    def key_id(self, data: bytes) -> str | None:
        """The id of the key ``data`` (from :meth:`dumps`) was encrypted with, or None."""
        return _Sealer.key_id_of(data)

    def reseal(self, data: bytes, *, context: str = "") -> bytes | None:
        """``data`` (from :meth:`dumps`) compressed and encrypted as :meth:`dumps` would now do it,
        or None if it already is (same key, same compression). Stores use it to re-encrypt
        their records with the active key after a key rotation (``store.reencrypt()``).

        Raises:
            CheckpointError: ``data`` cannot be decrypted (missing or wrong key, altered or
                moved record).
        """
        sealer = self._sealer
        if sealer is None:
            if not _Sealer.is_sealed(data):
                return None
            return _Sealer.open_without_sealer(data)
        if sealer.is_current(data):
            return None
        raw = sealer.open(data, context) if _Sealer.is_sealed(data) else bytes(data)
        return sealer.seal(raw, context)

    # -- public API -----------------------------------------------------------------------------
    def dumps(self, obj: Any, *, root: str = "value", context: str = "") -> bytes:
        """Serialize ``obj`` (then compress and encrypt it, if the serializer was made so).

        Args:
            obj: the value to store.
            root: how error messages name ``obj`` (e.g. ``"state"``).
            context: where the bytes will be stored (stores pass thread, checkpoint and field):
                authenticated with an encrypted record, so that :meth:`loads` refuses a record
                copied or moved to another place. Unused without encryption.

        Returns:
            The bytes, readable by :meth:`loads` of a serializer with the same registrations.

        Raises:
            CheckpointError: a value is outside the allowlist or nested more than
                :data:`MAX_NESTING` deep; the message names its key path, e.g.
                ``state["docs"][3].meta: cannot store object of type Foo; ...``.
        """
        sealer = self._sealer
        try:
            if _local.depth:  # dumps() called from inside an encode function: a packer of its own
                data = _packb(obj, default=self._default, use_bin_type=True, strict_types=True)
            else:
                packers = self._packers
                pk = packers.top
                if pk is None:
                    pk = packers.top = _Packer(
                        default=self._default, use_bin_type=True, strict_types=True, buf_size=16384
                    )
                try:
                    data = pk.pack(obj)
                except BaseException:
                    packers.top = None
                    raise
                if len(data) > _KEEP_BUFFER:
                    packers.top = None
            return data if sealer is None else sealer.seal(data, context)
        except UnicodeEncodeError:
            pass  # lone surrogates in a str: rare, so handled off the fast path
        except CheckpointError:
            raise
        except Exception as exc:
            raise self._explain(obj, root, exc) from _cause(exc)
        try:
            data = self._pack_inner(obj)
        except Exception as exc:
            raise self._explain(obj, root, exc) from _cause(exc)
        return data if sealer is None else sealer.seal(data, context)

    def loads(self, data: bytes, *, context: str = "") -> Any:
        """Rebuild a value written by :meth:`dumps`.

        Args:
            data: the bytes.
            context: the ``context`` given to :meth:`dumps` (checked for encrypted data).

        Raises:
            CheckpointError: the data is corrupt, names a class that is not registered, holds
                pickle data while ``allow_pickle`` is off, or breaks a limit no written value
                breaks (nesting, hash floods, shapes: see the module's docstring); or it is
                encrypted with a key this serializer lacks or does not match (the message names
                the key id), or it is not encrypted while this serializer encrypts (unless
                ``allow_plaintext``). Nothing from the data is run or imported, and time and
                memory stay proportional to its size (compressed data declares its size).
        """
        sealer = self._sealer
        if data and data[0] == 0xC1:
            data = (
                sealer.open(data, context)
                if sealer is not None
                else _Sealer.open_without_sealer(data)
            )
        elif sealer is not None and sealer.keys and not sealer.allow_plaintext:
            raise CheckpointError(
                "refusing to read a record that is not encrypted while this serializer encrypts "
                f"(keys {', '.join(map(repr, sealer.keys))}): someone may have written it in "
                "place of an encrypted one. To read a store written before encryption was turned "
                "on, pass Serializer(..., allow_plaintext=True) and run store.reencrypt()"
            )
        local = _local
        try:
            return self._unpack(data)
        except CheckpointError:
            raise
        except Exception as exc:
            if isinstance(exc, RecursionError) or local.lenient:
                raise _read_error(exc) from exc
        # Most likely a dict with non-string keys, which the fast pass refuses since their
        # hashes can be crafted to collide: read again, checking such maps (corrupt data fails
        # again). One retry per call, never one per nested level.
        local.lenient = True
        try:
            return self._unpack(data)
        except CheckpointError:
            raise
        except Exception as exc:
            raise _read_error(exc) from exc
        finally:
            local.lenient = False

    @typing.overload
    def register(
        self, cls: T, *, name: str | None = ..., encode: None = ..., decode: None = ...
    ) -> T: ...

    @typing.overload
    def register(
        self,
        cls: T,
        *,
        name: str | None = ...,
        encode: Callable[[Any], Any],
        decode: Callable[[Any], Any],
    ) -> T: ...

    @typing.overload
    def register(
        self,
        cls: None = ...,
        *,
        name: str | None = ...,
        encode: Callable[[Any], Any] | None = ...,
        decode: Callable[[Any], Any] | None = ...,
    ) -> Callable[[T], T]: ...

    def register(
        self,
        cls: Any = None,
        *,
        name: str | None = None,
        encode: Callable[[Any], Any] | None = None,
        decode: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Allow instances of ``cls`` in stored values. Usable as a decorator.

        Enums are stored by member name; dataclasses and pydantic v2 models by field (reading
        does not run ``__init__`` or validators; fields added to the class since get their
        defaults); NamedTuples by position. Any other class needs ``encode`` (object -> storable
        value) and ``decode`` (that value -> object). Registering again under the same name
        replaces the earlier class (a class redefined in a notebook cell).

        Args:
            cls: the class.
            name: the name stored in the data; defaults to ``"module.QualName"``. Give a
                stable name if the class may move.
            encode: for other classes: turns an instance into storable data.
            decode: for other classes: rebuilds an instance from that data.

        Returns:
            ``cls`` (or a decorator, when called without it).

        Raises:
            TypeError: ``cls`` is not a class of a supported kind and no encode/decode was given.

        Example:
            >>> @ser.register
            ... @dataclass
            ... class Doc:
            ...     text: str
        """
        if cls is None:
            return lambda c: self.register(c, name=name, encode=encode, decode=decode)
        if not isinstance(cls, type):
            raise TypeError(f"register() takes a class, got {_short_repr(cls)}")
        entry = self._make_entry(cls, name or _type_name(cls), encode, decode)
        with self._lock:
            self._by_name[entry.name] = entry
            if entry.kind == "enum":
                self._encoders[cls] = functools.partial(self._enc_enum, entry)
            else:
                self._encoders[cls] = functools.partial(self._enc_object, entry)
        return cls

    def register_from_annotations(self, tp: Any) -> list[type]:
        """Register every Enum, dataclass, pydantic model and NamedTuple reachable from a type hint.

        Walks ``Annotated``, ``list``/``dict``/``tuple``/``set``, ``Optional``/``Union``,
        ``Literal`` (enum members), TypedDict keys, and the fields of dataclasses and pydantic
        models, recursively. The engine calls it with the state schema.

        Args:
            tp: a type or type hint, e.g. the state schema class.

        Returns:
            The classes found (registered now or before), in discovery order.

        Example:
            >>> ser.register_from_annotations(State)
            [<class 'Doc'>, <enum 'Color'>]
        """
        found: list[type] = []
        seen: dict[int, Any] = {}  # id -> hint; holding the hint keeps its id unique

        def visit(t: Any) -> None:
            if id(t) in seen or t is None or isinstance(t, (str, typing.ForwardRef)):
                return
            seen[id(t)] = t
            if isinstance(t, enum.Enum):  # a Literal[...] argument
                visit(type(t))
                return
            if isinstance(t, typing.TypeVar):
                for c in (t.__bound__, *t.__constraints__):
                    visit(c)
                return
            args = typing.get_args(t)
            if typing.get_origin(t) is not None or args:
                for a in args:
                    if isinstance(a, (list, tuple)):  # Callable[[...], R]
                        for x in a:
                            visit(x)
                    else:
                        visit(a)
                return
            if not isinstance(t, type):
                return
            if issubclass(t, enum.Enum):
                self.register(t)
                found.append(t)
            elif dataclasses.is_dataclass(t) or _is_namedtuple(t):
                self.register(t)
                found.append(t)
                for h in _hints(t).values():
                    visit(h)
            elif _is_pydantic_model(t):
                self.register(t)
                found.append(t)
                for f in t.model_fields.values():  # type: ignore[attr-defined]
                    visit(f.annotation)
            elif typing_extensions.is_typeddict(
                t
            ):  # the stdlib's misses typing_extensions' before 3.12
                for h in _hints(t).values():
                    visit(h)

        visit(tp)
        return found

    @property
    def registered(self) -> dict[str, type]:
        """The registered classes by stored name."""
        return {n: e.cls for n, e in self._by_name.items()}

    # -- registration helpers -------------------------------------------------------------------
    def _make_entry(
        self,
        cls: type,
        name: str,
        encode: Callable[[Any], Any] | None,
        decode: Callable[[Any], Any] | None,
    ) -> _Entry:
        if (encode is None) != (decode is None):
            raise TypeError(
                f"register({cls.__qualname__}): give both encode= and decode=, or neither"
            )
        if encode is not None and decode is not None:
            return _Entry(
                name, cls, "custom", encode, decode, lambda o: [(".<encoded>", encode(o))]
            )
        if issubclass(cls, enum.Enum):
            return _Entry(name, cls, "enum", _no_op, _no_op, lambda o: ())
        if dataclasses.is_dataclass(cls):
            fields = {f.name: f for f in dataclasses.fields(cls)}
            names = tuple(fields)
            name_set = frozenset(names)
            # Instances keep their fields in __dict__, in field order, and no descriptor stands
            # in between: their __dict__ is the stored dict as it is, and one is rebuilt by
            # filling it (what getattr/setattr one field at a time would do, 3-4x faster).
            by_dict = any("__dict__" in vars(k) for k in cls.__mro__[:-1]) and not any(
                hasattr(type(inspect.getattr_static(cls, n, None)), "__set__") for n in names
            )

            def dc_encode(o: Any) -> dict[str, Any]:
                if by_dict:
                    d = o.__dict__
                    if tuple(d) == names:
                        return d  # type: ignore[no-any-return]
                return {n: getattr(o, n) for n in names}

            def dc_decode(state: dict[str, Any]) -> Any:
                obj = cls.__new__(cls)
                if by_dict and state.keys() == name_set:
                    obj.__dict__.update(state)
                    return obj
                for n, f in fields.items():
                    if n in state:
                        v = state[n]
                    elif f.default is not dataclasses.MISSING:
                        v = f.default
                    elif f.default_factory is not dataclasses.MISSING:
                        v = f.default_factory()
                    else:
                        continue
                    object.__setattr__(obj, n, v)
                return obj

            return _Entry(
                name,
                cls,
                "dataclass",
                dc_encode,
                dc_decode,
                lambda o: [(f".{n}", getattr(o, n)) for n in names],
            )
        if _is_pydantic_model(cls):
            return _Entry(
                name,
                cls,
                "pydantic",
                _pyd_encode,
                functools.partial(_pyd_decode, cls),
                _pyd_children,
            )
        if _is_namedtuple(cls):
            nt_fields: tuple[str, ...] = cls._fields  # type: ignore[attr-defined]
            return _Entry(
                name,
                cls,
                "namedtuple",
                list,
                lambda v: cls(*v),
                lambda o: [(f".{n}", v) for n, v in zip(nt_fields, o, strict=True)],
            )
        raise TypeError(
            f"cannot register {_type_name(cls)}: it is not an Enum, dataclass, pydantic model or "
            "NamedTuple; pass encode= and decode= functions to store it"
        )

    # -- encoding -------------------------------------------------------------------------------
    def _default_hook(self, obj: Any) -> Any:
        # Called once per non-plain value, from inside the packing of the value around it: the
        # nesting of these calls is the nesting of ext payloads the reader will unpack.
        local = _local
        depth = local.depth
        if depth >= MAX_NESTING:
            raise _Unsupported(obj, _TOO_DEEP)
        leaf = self._leaf_encoders.get(type(obj))
        if leaf is not None:  # nothing nests inside: no level to count
            return leaf(obj)
        local.depth = depth + 1
        try:
            enc = self._encoders.get(type(obj))
            if enc is not None:
                return enc(obj)
            return self._fallback(obj)
        finally:
            local.depth = depth

    def _fallback(self, obj: Any) -> Any:
        tp = type(obj)
        mod = tp.__module__ or ""
        if mod == "numpy" or mod.startswith("numpy."):
            np = sys.modules["numpy"]
            if tp is np.ndarray:
                self._encoders[tp] = self._enc_ndarray
                return self._enc_ndarray(obj)
            if isinstance(obj, np.generic):
                self._encoders[tp] = self._enc_npscalar
                return self._enc_npscalar(obj)
        elif mod == "pandas" or mod.startswith("pandas."):
            pd = sys.modules["pandas"]
            if tp is pd.DataFrame:
                self._encoders[tp] = self._enc_dataframe
                return self._enc_dataframe(obj)
            if tp is pd.Series:
                self._encoders[tp] = self._enc_series
                return self._enc_series(obj)
        if self.allow_pickle:
            try:
                return _tnew(_ET, (_PICKLE, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)))
            except Exception as exc:
                raise _Unsupported(
                    obj, f"cannot pickle object of type {_type_name(tp)}: {exc}", exc
                ) from exc
        raise _Unsupported(obj, _unsupported_reason(obj))

    def _pack_inner(self, obj: Any) -> bytes:
        """msgpack bytes of an ext payload, with this thread's packer of the current level."""
        inner = self._packers.inner
        depth = _local.depth
        try:
            pk = inner[depth]
        except IndexError:
            inner.extend([None] * (depth + 1 - len(inner)))
            pk = None
        if pk is None:
            pk = inner[depth] = _Packer(
                default=self._default_hook,
                use_bin_type=True,
                strict_types=True,
                unicode_errors="surrogatepass",
                buf_size=1024,
            )
        try:
            out: bytes = pk.pack(obj)
        except BaseException:
            inner[depth] = None
            raise
        if len(out) > _KEEP_BUFFER:
            inner[depth] = None
        return out

    def _enc_tuple(self, obj: tuple[Any, ...]) -> Any:
        return _tnew(_ET, (_TUPLE, self._pack_inner(list(obj))))

    def _enc_set(self, obj: set[Any]) -> Any:
        items = list(obj)
        if len(items) > _MAX_SAME_HASH and _hash_flood(items):
            raise _Unsupported(obj, _FLOOD_WRITE)
        return _tnew(_ET, (_SET, self._pack_inner(items)))

    def _enc_frozenset(self, obj: frozenset[Any]) -> Any:
        items = list(obj)
        if len(items) > _MAX_SAME_HASH and _hash_flood(items):
            raise _Unsupported(obj, _FLOOD_WRITE)
        return _tnew(_ET, (_FROZENSET, self._pack_inner(items)))

    def _enc_bigint(self, obj: int) -> Any:
        return _tnew(_ET, (_BIGINT, obj.to_bytes(obj.bit_length() // 8 + 1, "big", signed=True)))

    def _enc_tz(self, tz: _dt.tzinfo | None, when: _dt.datetime | None) -> Any:
        if tz is None:
            return None
        if tz is _dt.timezone.utc:
            return "utc"
        if type(tz) is zoneinfo.ZoneInfo and tz.key is not None:
            return ["zone", tz.key]
        off = tz.utcoffset(when)
        if off is None:
            return None
        name = tz.tzname(when)
        if type(tz) is _dt.timezone and name == _dt.timezone(off).tzname(None):
            name = None  # no explicit name: keep the default one
        return ["fixed", off.days, off.seconds, off.microseconds, name]

    def _enc_datetime(self, d: _dt.datetime) -> Any:
        tz = self._enc_tz(d.tzinfo, d)
        return _tnew(
            _ET,
            (
                _DATETIME,
                _leaf_pack(
                    [d.year, d.month, d.day, d.hour, d.minute, d.second, d.microsecond, d.fold, tz]
                ),
            ),
        )

    def _enc_date(self, d: _dt.date) -> Any:
        return _tnew(_ET, (_DATE, _leaf_pack(d.toordinal())))

    def _enc_time(self, t: _dt.time) -> Any:
        tz = self._enc_tz(t.tzinfo, None)
        return _tnew(
            _ET, (_TIME, _leaf_pack([t.hour, t.minute, t.second, t.microsecond, t.fold, tz]))
        )

    def _enc_timedelta(self, t: _dt.timedelta) -> Any:
        return _tnew(_ET, (_TIMEDELTA, _leaf_pack([t.days, t.seconds, t.microseconds])))

    def _enc_uuid(self, u: uuid.UUID) -> Any:
        return _tnew(_ET, (_UUID, u.bytes))

    def _enc_decimal(self, d: decimal.Decimal) -> Any:
        return _tnew(_ET, (_DECIMAL, str(d).encode("ascii")))

    def _enc_complex(self, c: complex) -> Any:
        return _tnew(_ET, (_COMPLEX, _leaf_pack([c.real, c.imag])))

    def _enc_path(self, p: pathlib.PurePath) -> Any:
        if isinstance(p, pathlib.Path):
            kind = "path"
        elif isinstance(p, pathlib.PureWindowsPath):
            kind = "pure_windows"
        else:
            kind = "pure_posix"
        return _tnew(_ET, (_PATH, _leaf_pack([kind, str(p)])))

    def _enc_enum(self, entry: _Entry, member: enum.Enum) -> Any:
        name = member._name_
        members: dict[str, Any] = entry.cls.__members__  # type: ignore[attr-defined]
        if name is not None and members.get(name) is member:
            return _tnew(_ET, (_ENUM, self._pack_inner([entry.name, name])))
        return _tnew(
            _ET, (_ENUM, self._pack_inner([entry.name, None, member._value_]))
        )  # Flag combos

    def _enc_object(self, entry: _Entry, obj: Any) -> Any:
        return _tnew(_ET, (_OBJECT, self._pack_inner([entry.name, entry.encode(obj)])))

    def _enc_ndarray(self, a: Any) -> Any:
        np = sys.modules["numpy"]
        dt = a.dtype
        if dt.hasobject:
            if dt != np.dtype(object):
                raise _Unsupported(
                    a, f"cannot store a numpy array of structured dtype {dt} holding objects"
                )
            return _tnew(
                _ET, (_NDARRAY, self._pack_inner(["O", list(a.shape), list(a.reshape(-1))]))
            )
        if dt.itemsize == 0 and a.size > _MAX_EMPTY_ITEMS:
            raise _Unsupported(a, _TOO_MANY_EMPTY)
        spec = dt.str if dt.fields is None and dt.subdtype is None else dt.descr
        return _tnew(
            _ET,
            (_NDARRAY, self._pack_inner([spec, list(a.shape), np.ascontiguousarray(a).tobytes()])),
        )

    def _enc_npscalar(self, x: Any) -> Any:
        dt = x.dtype
        if dt.hasobject:
            raise _Unsupported(x, f"cannot store a numpy scalar of dtype {dt}")
        if dt.kind in "US":  # itemsize follows the value; np.str_("") has none
            return _tnew(_ET, (_NPSCALAR, self._pack_inner([dt.kind, x.item()])))
        spec = dt.str if dt.fields is None else dt.descr
        return _tnew(_ET, (_NPSCALAR, self._pack_inner([spec, x.tobytes()])))

    def _pd_values(self, obj: Any, what: str) -> list[Any]:
        """Column (or index) values of a Series/Index as ``[kind, ...]``, exact for common dtypes."""
        pd = sys.modules["pandas"]
        np = sys.modules["numpy"]
        dt = obj.dtype
        if isinstance(dt, np.dtype):
            if dt.hasobject:
                return ["o", list(obj.to_numpy())]
            return ["n", obj.to_numpy()]
        if isinstance(dt, pd.CategoricalDtype):
            arr = obj.array
            return ["c", arr.codes, self._pd_index(arr.categories), bool(arr.ordered)]
        if isinstance(dt, pd.DatetimeTZDtype):
            utc = obj.array.tz_convert("UTC").tz_localize(None)
            return ["tz", np.asarray(utc), str(dt.tz)]
        name = str(dt)
        if name in _PANDAS_EXT_DTYPES:
            return ["e", name, list(obj.array.to_numpy(dtype=object, na_value=None))]
        raise _Unsupported(
            obj, f"cannot store pandas {what} of dtype {name!r}; convert it to a common dtype"
        )

    def _pd_index(self, idx: Any) -> list[Any]:
        pd = sys.modules["pandas"]
        if type(idx) is pd.RangeIndex:
            return ["r", idx.start, idx.stop, idx.step, idx.name]
        if isinstance(idx, pd.MultiIndex):
            return ["m", list(idx), list(idx.names)]
        return ["i", self._pd_values(idx, "index"), idx.name, getattr(idx, "freqstr", None)]

    def _enc_dataframe(self, df: Any) -> Any:
        cols = [
            self._pd_values(df.iloc[:, i], f"column {df.columns[i]!r}") for i in range(df.shape[1])
        ]
        return _tnew(
            _ET,
            (
                _DATAFRAME,
                self._pack_inner([self._pd_index(df.index), self._pd_index(df.columns), cols]),
            ),
        )

    def _enc_series(self, s: Any) -> Any:
        return _tnew(
            _ET,
            (
                _SERIES,
                self._pack_inner([self._pd_values(s, "Series"), self._pd_index(s.index), s.name]),
            ),
        )

    # -- decoding -------------------------------------------------------------------------------
    def _unpack(self, data: bytes) -> Any:
        """Unpack one msgpack value (an ext payload is unpacked again by :meth:`_ext_hook`).

        Maps must have str or bytes keys (whose hashes differ per process) unless ``loads``
        switched to lenient mode, where each map with more keys than one hash may share is
        checked before it is built. ``unpackb`` keeps its state on the C stack (~40 KB), so
        past the first few ext levels the heap-allocated ``Unpacker`` takes over.
        """
        local = _local
        if local.depth <= _FAST_LEVELS:
            if not local.lenient:
                return _unpackb(
                    data, ext_hook=self._ext_hook, raw=False, unicode_errors="surrogatepass"
                )
            return _unpackb(
                data,
                ext_hook=self._ext_hook,
                raw=False,
                strict_map_key=False,
                object_pairs_hook=_checked_dict,
                unicode_errors="surrogatepass",
            )
        # Its length limits (arrays, maps, strings) follow the data's size, as unpackb's do.
        unpacker = _Unpacker(
            None,
            max_buffer_size=max(len(data), 1),
            ext_hook=self._ext_hook,
            raw=False,
            strict_map_key=not local.lenient,
            object_pairs_hook=_checked_dict if local.lenient else None,
            unicode_errors="surrogatepass",
        )
        unpacker.feed(data)
        value = unpacker.unpack()
        if unpacker.tell() != len(data):
            raise ValueError("extra bytes after the value")
        return value

    def _ext_hook(self, code: int, data: bytes) -> Any:
        leaf = self._leaf_decoders.get(code)
        if leaf is not None and _local.depth < MAX_NESTING:  # nothing nests inside
            return leaf(data)
        dec = self._decoders.get(code)
        if dec is None:
            raise CheckpointError(
                f"cannot read stored data: unknown value type (msgpack ext code {code}); it was "
                "written by a newer agentgraph_nb or is corrupt"
            )
        local = _local
        depth = local.depth
        if depth >= MAX_NESTING:
            raise CheckpointError(
                f"cannot read stored data: its values nest more than {MAX_NESTING} levels deep "
                "(tuples, sets, objects, ...), which agentgraph_nb never writes: it is corrupt "
                "or was made by hand"
            )
        local.depth = depth + 1
        try:
            return dec(data)
        finally:
            local.depth = depth

    def _dec_pickle(self, data: bytes) -> Any:
        if not self.allow_pickle:
            raise CheckpointError(
                "refusing to read pickled data: unpickling runs code chosen by whoever wrote the "
                "store. If you trust every writer of this store, read it with "
                "Serializer(allow_pickle=True); otherwise register the classes involved"
            )
        return pickle.loads(data)

    def _dec_tz(self, spec: Any) -> _dt.tzinfo | None:
        if spec is None:
            return None
        if spec == "utc":
            return _dt.timezone.utc
        if spec[0] == "zone":
            try:
                return zoneinfo.ZoneInfo(spec[1])
            except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
                raise CheckpointError(
                    f"cannot read a datetime: time zone {spec[1]!r} is not available here "
                    "(install the tzdata package)"
                ) from exc
        _, days, secs, micros, name = spec
        off = _dt.timedelta(days, secs, micros)
        return _dt.timezone(off) if name is None else _dt.timezone(off, name)

    def _dec_datetime(self, data: bytes) -> _dt.datetime:
        y, mo, d, h, mi, s, us, fold, tz = _leaf_unpackb(data)
        tzinfo = _UTC if tz == "utc" else self._dec_tz(tz)
        return _dt.datetime(y, mo, d, h, mi, s, us, tzinfo=tzinfo, fold=fold)

    def _dec_time(self, data: bytes) -> _dt.time:
        h, mi, s, us, fold, tz = _leaf_unpackb(data)
        return _dt.time(h, mi, s, us, tzinfo=self._dec_tz(tz), fold=fold)

    def _dec_timedelta(self, data: bytes) -> _dt.timedelta:
        d, s, us = _leaf_unpackb(data)
        return _dt.timedelta(d, s, us)

    def _dec_complex(self, data: bytes) -> complex:
        re, im = _leaf_unpackb(data)
        return complex(re, im)

    def _dec_path(self, data: bytes) -> pathlib.PurePath:
        kind, s = _leaf_unpackb(data)
        cls = {
            "path": pathlib.Path,
            "pure_posix": pathlib.PurePosixPath,
            "pure_windows": pathlib.PureWindowsPath,
        }
        if kind not in cls:
            raise CheckpointError(f"cannot read stored data: unknown path kind {kind!r}")
        return cls[kind](s)

    def _lookup(self, name: Any, kind: str) -> _Entry:
        entry = self._by_name.get(name) if isinstance(name, str) else None
        if entry is None:
            raise CheckpointError(
                f"cannot read stored data: it holds {kind} {name!r}, which is not registered with "
                f"the serializer. Register the class before reading, e.g. serializer.register(cls) "
                f"(or register(cls, name={name!r}) if it has moved); the engine registers the "
                "classes found in the state schema's type hints"
            )
        return entry

    def _dec_enum(self, data: bytes) -> Any:
        name, member, *value = self._unpack(data)
        entry = self._lookup(name, "an enum member of class")
        if entry.kind != "enum":
            raise CheckpointError(
                f"cannot read stored data: {name!r} is registered but is not an Enum"
            )
        cls: Any = entry.cls
        try:
            return cls[member] if member is not None else cls(value[0])
        except (KeyError, ValueError, IndexError) as exc:
            raise CheckpointError(
                f"cannot read stored data: enum {name} has no member {member if member is not None else value!r}"
            ) from exc

    def _dec_object(self, data: bytes) -> Any:
        name, state = self._unpack(data)
        entry = self._lookup(name, "an object of class")
        if entry.kind == "enum":
            raise CheckpointError(f"cannot read stored data: {name!r} is registered as an Enum")
        try:
            return entry.decode(state)
        except CheckpointError:
            raise
        except Exception as exc:
            raise CheckpointError(
                f"cannot rebuild an object of class {name}: {type(exc).__name__}: {exc}. Was the "
                "class changed incompatibly since the data was written?"
            ) from exc

    def _dec_ndarray(self, data: bytes) -> Any:
        import numpy as np

        spec, shape, payload = self._unpack(data)
        if spec == "O":
            out = np.empty(len(payload), dtype=object)
            for i, v in enumerate(payload):
                out[i] = v
            return out.reshape(shape)
        dt = _np_dtype(np, spec)
        if dt.itemsize == 0:  # e.g. "V0": no bytes tell how many items there are
            out = np.zeros(shape, dtype=dt)  # allocates nothing, whatever the shape
            if out.size > _MAX_EMPTY_ITEMS:
                raise CheckpointError(
                    f"cannot read stored data: a numpy array claims {out.size:,} zero-size items "
                    f"(agentgraph_nb stores at most {_MAX_EMPTY_ITEMS:,}): it is corrupt or was "
                    "made by hand"
                )
            return out
        # The item count follows from the bytes given, so memory stays proportional to them.
        return np.frombuffer(payload, dtype=dt).reshape(shape).copy()

    def _dec_npscalar(self, data: bytes) -> Any:
        import numpy as np

        spec, payload = self._unpack(data)
        if spec == "U":
            return np.str_(payload)
        if spec == "S":
            return np.bytes_(payload)
        return np.frombuffer(payload, dtype=_np_dtype(np, spec))[0]

    def _pd_values_dec(self, v: list[Any]) -> Any:
        import numpy as np
        import pandas as pd

        kind = v[0]
        if kind == "n":
            if type(v[1]) is not np.ndarray or v[1].ndim != 1:
                raise CheckpointError(
                    "cannot read stored data: a pandas column or index holds "
                    f"{type(v[1]).__name__} where its array should be"
                )
            return v[1]
        if kind == "o":
            out = np.empty(len(v[1]), dtype=object)
            for i, x in enumerate(v[1]):
                out[i] = x
            return out
        if kind == "c":
            return pd.Categorical.from_codes(
                v[1], categories=self._pd_index_dec(v[2]), ordered=v[3]
            )
        if kind == "tz":
            return pd.DatetimeIndex(v[1]).tz_localize("UTC").tz_convert(v[2]).array
        if kind == "e" and v[1] in _PANDAS_EXT_DTYPES:
            return pd.array(v[2], dtype=v[1])
        raise CheckpointError(f"cannot read stored data: unknown pandas column kind {kind!r}")

    def _pd_index_dec(self, v: list[Any]) -> Any:
        import pandas as pd

        kind = v[0]
        if kind == "r":
            return pd.RangeIndex(v[1], v[2], v[3], name=v[4])
        if kind == "m":
            for level in zip(*v[1]):  # factorizing a level hashes its values
                _unflooded(list(level), "values of a MultiIndex level")
            return pd.MultiIndex.from_tuples(v[1], names=v[2])
        values, name, freq = v[1], v[2], v[3]
        idx = pd.Index(self._pd_values_dec(values), name=name, tupleize_cols=False)
        if freq is not None and isinstance(idx, (pd.DatetimeIndex, pd.TimedeltaIndex)):
            idx = type(idx)(idx, freq=freq)
        return idx

    def _dec_dataframe(self, data: bytes) -> Any:
        import pandas as pd

        index, columns, cols = self._unpack(data)
        idx = self._pd_index_dec(index)
        labels = self._pd_index_dec(columns)
        values = [self._pd_values_dec(c) for c in cols]
        if len(labels) != len(values):
            raise CheckpointError(
                f"cannot read stored data: a DataFrame has {len(values)} columns but "
                f"{len(labels)} column labels"
            )
        for col in values:
            _check_rows(col, len(idx), "a DataFrame column")
        df = pd.DataFrame(dict(enumerate(values)), index=idx)
        df.columns = labels
        return df

    def _dec_series(self, data: bytes) -> Any:
        import pandas as pd

        values, index, name = self._unpack(data)
        col = self._pd_values_dec(values)
        idx = self._pd_index_dec(index)
        _check_rows(col, len(idx), "a Series")
        return pd.Series(col, index=idx, name=name)

    # -- error reporting ------------------------------------------------------------------------
    def _explain(self, obj: Any, root: str, exc: BaseException) -> CheckpointError:
        """Find the value that made ``dumps`` fail and say where it is."""
        try:
            found = self._find(obj, root, set())
        except RecursionError:
            found = None
        if found is not None:
            where = found[0]
            if len(where) > 240:  # a path 100 levels deep: its start and end say where it is
                where = f"{where[:150]}...{where[-60:]}"
            return CheckpointError(f"{where}: {found[1]}")
        if isinstance(exc, _Unsupported):
            return CheckpointError(f"{root}: {exc.reason}")
        if isinstance(exc, ValueError) and "recursion" in str(exc).lower():
            return CheckpointError(f"{root}: cannot store a value nested more than 500 levels deep")
        return CheckpointError(f"{root}: cannot be stored: {type(exc).__name__}: {exc}")

    def _find(self, obj: Any, path: str, stack: set[int], depth: int = 0) -> tuple[str, str] | None:
        tp = type(obj)
        if tp in _NATIVE:
            return None
        if tp is not dict and tp is not list:  # an ext value: one level of MAX_NESTING
            depth += 1
            if depth > MAX_NESTING:
                return path, _TOO_DEEP
        children: Iterable[tuple[str, Any]] | None = None
        if tp is dict:
            children = _dict_children(obj)
        elif tp is list or tp is tuple:
            children = ((f"[{i}]", v) for i, v in enumerate(obj))
        elif tp is set or tp is frozenset:
            children = ((f"{{{_short_repr(v)}}}", v) for v in obj)
        else:
            enc = self._encoders.get(tp)
            entry = getattr(enc, "args", (None,))[0] if isinstance(enc, functools.partial) else None
            if isinstance(entry, _Entry) and entry.kind != "enum":
                try:
                    children = list(entry.children(obj))
                except Exception as exc:
                    return (
                        path,
                        f"cannot store object of type {_type_name(tp)}: its encode failed: {type(exc).__name__}: {exc}",
                    )
            else:
                np = sys.modules.get("numpy")
                if np is not None and tp is np.ndarray and obj.dtype == np.dtype(object):
                    children = (
                        (f"[{', '.join(map(str, i))}]", obj[i]) for i in np.ndindex(obj.shape)
                    )
                pd = sys.modules.get("pandas")
                if pd is not None and tp in (pd.DataFrame, pd.Series):
                    children = _pandas_children(pd, obj)
        if children is not None:
            if id(obj) in stack:
                return (
                    path,
                    "circular reference: the value contains itself; checkpoints store trees",
                )
            stack.add(id(obj))
            try:
                for suffix, child in children:
                    r = self._find(child, path + suffix, stack, depth)
                    if r is not None:
                        return r
            finally:
                stack.discard(id(obj))
            if tp is not dict:
                try:  # the children are fine; check the container's own encoding
                    self._default(obj)
                except _Unsupported as exc:
                    return path, exc.reason
                except Exception as exc:
                    return (
                        path,
                        f"cannot store object of type {_type_name(tp)}: {type(exc).__name__}: {exc}",
                    )
            return None
        try:
            self._default(obj)
        except _Unsupported as exc:
            return path, exc.reason
        except Exception as exc:
            return (
                path,
                f"cannot store object of type {_type_name(tp)}: {type(exc).__name__}: {exc}",
            )
        return None


def _dict_children(d: dict[Any, Any]) -> Iterator[tuple[str, Any]]:
    for k, v in d.items():
        yield f"[{_short_repr(k)}] (the key)", k
        yield _key_path("", k), v


def _pandas_children(pd: Any, obj: Any) -> Iterator[tuple[str, Any]]:
    frame = obj.to_frame() if isinstance(obj, pd.Series) else obj
    for i in range(frame.shape[1]):
        col = frame.iloc[:, i]
        if col.dtype == object:
            label = _key_path("", frame.columns[i]) if isinstance(obj, pd.DataFrame) else ""
            for j, v in enumerate(col.array):
                yield f"{label}.iloc[{j}]", v


def _no_op(x: Any) -> Any:
    return x


def _cause(exc: BaseException) -> BaseException | None:
    """What a CheckpointError raised by ``dumps`` is chained to: the user's own error, if any."""
    if isinstance(exc, _Unsupported):
        return exc.cause
    return exc


_TOO_DEEP = (
    f"cannot store a value nested more than {MAX_NESTING} levels deep in tuples, sets, objects "
    "and other non-plain values (lists and dicts in between do not count): a process reading it "
    "back could crash. Flatten it, e.g. keep the nodes of a linked list or a tree in a list"
)
_FLOOD_WRITE = (
    f"cannot store a set in which more than {_MAX_SAME_HASH} distinct items share one hash "
    "value: building it again takes quadratic time, so readers refuse such data"
)
_TOO_MANY_EMPTY = (
    f"cannot store a numpy array of more than {_MAX_EMPTY_ITEMS:,} zero-size items (dtype V0)"
)


def _hash_flood(values: list[Any] | tuple[Any, ...]) -> bool:
    """Whether more than ``_MAX_SAME_HASH`` distinct values share one hash value.

    Putting n values of one hash in a dict or set takes n**2/2 comparisons. Only str and bytes
    hash differently in every process; ints, floats, tuples, ... can be chosen to collide
    (``hash(k * (2**61 - 1) + 5)`` is the same for every k). Linear: one ``hash`` per value.
    """
    hashes = list(map(hash, values))
    if len(set(hashes)) == len(hashes):  # the usual case, all in C
        return False
    # Equal values (a MultiIndex level repeats them) are fine; only distinct ones collide.
    # Keyed by int hash values, which collide at most 9 to a class: 2**64 / (2**61 - 1).
    same: dict[int, list[Any]] = {}
    for h, v in zip(hashes, values, strict=True):
        seen = same.get(h)
        if seen is None:
            same[h] = [v]
        elif v not in seen:
            if len(seen) >= _MAX_SAME_HASH:
                return True
            seen.append(v)
    return False


def _unflooded(values: Any, what: str) -> Any:
    """``values``, unless they are crafted to make a dict or set of them quadratic to build."""
    if type(values) in (list, tuple) and len(values) > _MAX_SAME_HASH and _hash_flood(values):
        raise CheckpointError(
            f"cannot read stored data: more than {_MAX_SAME_HASH} distinct {what} share one hash "
            "value, which agentgraph_nb never writes (building them takes quadratic time): it is "
            "corrupt or was made by hand"
        )
    return values


def _read_error(exc: BaseException) -> CheckpointError:
    if isinstance(exc, RecursionError):
        return CheckpointError("cannot read stored data: it is nested too deeply")
    return CheckpointError(
        "cannot read stored data: it is corrupt or was not written by agentgraph_nb "
        f"({type(exc).__name__}: {exc})"
    )


def _checked_dict(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """Build a map whose keys may not all be strings (msgpack's ``object_pairs_hook``)."""
    if len(pairs) > _MAX_SAME_HASH:
        _unflooded(list(map(_first, pairs)), "dict keys")
    return dict(pairs)


def _check_rows(values: Any, rows: int, what: str) -> None:
    # pandas broadcasts a scalar or a short column to the index's length: 20 bytes could
    # otherwise become millions of rows.
    if len(values) != rows:
        raise CheckpointError(
            f"cannot read stored data: {what} has {len(values)} values for an index of {rows} rows"
        )


def _unsupported_reason(obj: Any) -> str:
    tp = type(obj)
    name = tp.__qualname__
    what = f"cannot store object of type {_type_name(tp)}"
    if isinstance(obj, enum.Enum):
        return f"{what}; register the enum with serializer.register({name})"
    if dataclasses.is_dataclass(tp) or _is_pydantic_model(tp) or _is_namedtuple(tp):
        return (
            f"{what}; register it with serializer.register({name}) (the engine registers the "
            "classes named in the state schema's type hints), or "
            "use Serializer(allow_pickle=True) if you trust everyone who can write the store"
        )
    if isinstance(obj, (dict, list, set, tuple, str, int, float, bytes)):
        base = next(
            b for b in (dict, list, set, tuple, str, int, float, bytes) if isinstance(obj, b)
        )
        return (
            f"{what} (a subclass of {base.__name__}); convert it to a plain {base.__name__}, or "
            f"register it with serializer.register({name}, encode=..., decode=...)"
        )
    return (
        f"{what}; register it with serializer.register({name}, encode=..., decode=...) or make "
        "it a dataclass or pydantic model, or use Serializer(allow_pickle=True) if you trust "
        "everyone who can write the store"
    )


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except Exception:  # an unresolvable forward reference: resolve the others one by one
        pass
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        module = sys.modules.get(getattr(klass, "__module__", ""), None)
        globalns = dict(vars(module)) if module is not None else {}
        for name, hint in vars(klass).get("__annotations__", {}).items():
            if isinstance(hint, typing.ForwardRef):  # TypedDict keeps these
                hint = hint.__forward_arg__
            try:
                # Evaluates the class's own annotation source, exactly as get_type_hints does.
                out[name] = (
                    eval(hint, globalns, dict(vars(klass))) if isinstance(hint, str) else hint
                )
            except Exception:
                continue
    return out


def _np_dtype(np: Any, spec: Any) -> Any:
    if isinstance(spec, list):
        spec = [tuple(f) if isinstance(f, list) else f for f in spec]
    dt = np.dtype(spec)
    if dt.hasobject:
        raise CheckpointError("cannot read stored data: a numpy array claims an object dtype")
    return dt


def _pyd_encode(obj: Any) -> list[Any]:
    fields = type(obj).model_fields
    return [
        {n: v for n, v in obj.__dict__.items() if n in fields},
        list(obj.__pydantic_fields_set__),
        obj.__pydantic_extra__,
        obj.__pydantic_private__,
    ]


def _pyd_children(obj: Any) -> list[tuple[str, Any]]:
    out = [(f".{n}", v) for n, v in obj.__dict__.items()]
    for extra in (obj.__pydantic_extra__, obj.__pydantic_private__):
        if extra:
            out.extend((f".{n}", v) for n, v in extra.items())
    return out


def _pyd_decode(cls: Any, state: list[Any]) -> Any:
    values, fields_set, extra, private = state
    fields = cls.model_fields
    d = {n: v for n, v in values.items() if n in fields}
    for n, f in fields.items():
        if n not in d and not f.is_required():
            try:
                d[n] = f.get_default(call_default_factory=True, validated_data=d)
            except TypeError:  # pydantic < 2.10
                d[n] = f.get_default(call_default_factory=True)
    obj = cls.__new__(cls)
    obj.__setstate__(
        {
            "__dict__": d,
            "__pydantic_fields_set__": set(_unflooded(fields_set, "field names"))
            & {*fields, *(extra or ())},
            "__pydantic_extra__": extra,
            "__pydantic_private__": private,
        }
    )
    return obj


_default_lock = threading.Lock()
_default: Serializer | None = None


def default_serializer() -> Serializer:
    """The process-wide serializer used by stores created without ``serializer=``.

    Registering a class on it makes the class readable by every such store.

    Example:
        >>> default_serializer().register(Doc)
    """
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Serializer()
    return _default
