"""Arrow columns → the bytes Feast's online stores hold, a whole column at a time.

Why not Feast's `_convert_arrow_to_proto`: it builds a `ValueProto` per value and an
`EntityKeyProto` per row in Python, which is most of materialization's time for a 384-float
embedding. The wire format of a `Value` with one member set is fixed by protobuf, so for the
types signals use (Float32, Int64, Bool, String, Array(Float32)) the bytes are written directly,
vectorized for floats and float lists, and are the bytes `Value.SerializeToString()` gives
(tests compare them with Feast's own conversion, nulls, NaN and empty lists included). Any other
type goes through Feast's conversion, still a column at a time. Entity keys are Feast's
`serialize_entity_key` layout for one string or int64 join key; others use Feast's function.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.type_map import python_values_to_proto_values
from feast.value_type import ValueType

# Tags of the `Value` members (field number << 3 | wire type), and of `FloatList.val` (packed).
_FLOAT = b"\x35"  # float_val = 6, fixed32
_INT64 = b"\x20"  # int64_val = 4, varint
_BOOL = b"\x38"  # bool_val = 7, varint
_STRING = b"\x12"  # string_val = 2, length-delimited
_FLOAT_LIST = b"\x82\x01"  # float_list_val = 16, length-delimited
_PACKED = b"\x0a"  # FloatList.val = 1, packed floats
_EPOCH = datetime(1970, 1, 1)

Column = pa.Array | pa.ChunkedArray


@dataclass(frozen=True)
class Encoded:
    """One feature column, serialized: a `Value` per row (b"" is a null value, as Feast writes
    it) and the text Feast's SQLite store keeps beside it in `value_text`."""

    values: list[bytes]
    texts: list[str | None]


def _varint(n: int) -> bytes:
    n &= 0xFFFF_FFFF_FFFF_FFFF  # negative int64: two's complement, ten bytes
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _array(column: Column) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _floats(column: Column) -> Encoded:
    values = _array(column).cast(pa.float32()).to_numpy(zero_copy_only=False)
    n = len(values)
    wire = np.empty((n, 5), np.uint8)
    wire[:, 0] = _FLOAT[0]
    wire[:, 1:] = values.astype("<f4").view(np.uint8).reshape(n, 4)
    flat = wire.tobytes()
    missing = np.isnan(values)  # Feast stores NaN as a null value, as it does a null
    encoded = [b"" if missing[i] else flat[i * 5 : i * 5 + 5] for i in range(n)]
    texts = [None if m else str(v) for m, v in zip(missing.tolist(), values.tolist(), strict=True)]
    return Encoded(encoded, texts)


def _list_prefix(count: int) -> bytes:
    # `float_list_val` of `count` floats: its tag and length, then the packed field's.
    inner = _PACKED + _varint(4 * count) if count else b""
    return _FLOAT_LIST + _varint(len(inner) + 4 * count) + inner


def _float_lists(column: Column) -> Encoded | None:
    lists = _array(column)
    if not pa.types.is_list(lists.type) and not pa.types.is_large_list(lists.type):
        return None
    if lists.values.null_count:
        return None  # a null inside a list: Feast's conversion decides what that means
    floats = lists.values.cast(pa.float32()).to_numpy(zero_copy_only=False).astype("<f4")
    offsets = lists.offsets.to_numpy()
    lengths = np.diff(offsets)
    n = len(lengths)
    if n and not lists.null_count and (lengths == lengths[0]).all() and lengths[0]:
        # One length (an embedding): every row is the same prefix and a slice of the floats,
        # laid out side by side once, so each row's bytes are one slice of one buffer.
        prefix = np.frombuffer(_list_prefix(int(lengths[0])), np.uint8)
        data = floats[offsets[0] : offsets[-1]].view(np.uint8).reshape(n, -1)
        flat = np.hstack([np.broadcast_to(prefix, (n, len(prefix))), data]).tobytes()
        width = len(prefix) + data.shape[1]
        return Encoded([flat[i * width : (i + 1) * width] for i in range(n)], [None] * n)
    data = floats.tobytes()
    valid = lists.is_valid().to_numpy(zero_copy_only=False)
    prefixes: dict[int, bytes] = {}
    encoded: list[bytes] = []
    for i, ok in enumerate(valid.tolist()):
        if not ok:
            encoded.append(b"")
            continue
        start, end = int(offsets[i]), int(offsets[i + 1])
        count = end - start
        if count not in prefixes:
            prefixes[count] = _list_prefix(count)
        encoded.append(prefixes[count] + data[4 * start : 4 * end])
    return Encoded(encoded, [None] * len(encoded))


def _ints(column: Column) -> Encoded:
    values = _array(column).cast(pa.int64()).to_pylist()
    return Encoded(
        [b"" if v is None else _INT64 + _varint(v) for v in values],
        [None if v is None else str(v) for v in values],
    )


def _bools(column: Column) -> Encoded:
    values = _array(column).cast(pa.bool_()).to_pylist()
    return Encoded(
        [b"" if v is None else _BOOL + (b"\x01" if v else b"\x00") for v in values],
        [None if v is None else str(v) for v in values],
    )


def _strings(column: Column) -> Encoded:
    values = _array(column).cast(pa.string()).to_pylist()
    encoded = []
    for v in values:
        if v is None:
            encoded.append(b"")
        else:
            raw = v.encode("utf-8")
            encoded.append(_STRING + _varint(len(raw)) + raw)
    return Encoded(encoded, values)


def _text_of(value: object) -> str | None:
    # Feast's SQLite store: the text of a string, number or bool value; nothing for the rest.
    kind = value.WhichOneof("val")  # type: ignore[attr-defined]
    if kind in ("string_val", "int64_val", "int32_val", "double_val", "float_val", "bool_val"):
        return str(getattr(value, kind))
    return None


def _by_feast(column: Column, value_type: ValueType) -> Encoded:
    protos = python_values_to_proto_values(
        _array(column).to_numpy(zero_copy_only=False), value_type
    )
    return Encoded([p.SerializeToString() for p in protos], [_text_of(p) for p in protos])


_NATIVE: dict[ValueType, Callable[[Column], Encoded | None]] = {
    ValueType.FLOAT: _floats,
    ValueType.INT64: _ints,
    ValueType.BOOL: _bools,
    ValueType.STRING: _strings,
    ValueType.FLOAT_LIST: _float_lists,
}


def encode_values(column: Column, value_type: ValueType) -> Encoded:
    """A feature column as Feast's serialized `Value`s, natively where the type allows.

    Why per column: the fast path vectorizes the numbers and builds each row's bytes with one
    slice and one join, the part that is per-row Python in Feast's conversion.
    """
    native = _NATIVE.get(value_type)
    encoded = native(column) if native else None
    return encoded if encoded is not None else _by_feast(column, value_type)


def _key_name(name: str) -> bytes:
    # A join key's name: its type (always STRING), length and UTF-8 bytes.
    raw = name.encode("utf-8")
    return struct.pack("<I", ValueType.STRING.value) + struct.pack("<I", len(raw)) + raw


def encode_entity_keys(
    columns: dict[str, Column], join_keys: dict[str, ValueType], version: int
) -> list[bytes]:
    """Each row's entity key as Feast's `serialize_entity_key` writes it.

    Why by hand for one key: that layout is a fixed header, the value's type and length, and the
    value, so a key costs one concatenation instead of two protos and a serializer call.
    """
    if len(join_keys) == 1 and version >= 3:
        ((name, value_type),) = join_keys.items()
        values = _array(columns[name])
        if value_type == ValueType.STRING and values.null_count == 0:
            head = struct.pack("<I", 1) + _key_name(name)
            head += struct.pack("<I", ValueType.STRING.value)
            keys = []
            for v in values.cast(pa.string()).to_pylist():
                raw = v.encode("utf-8")
                keys.append(head + struct.pack("<I", len(raw)) + raw)
            return keys
        if value_type == ValueType.INT64 and values.null_count == 0:
            head = struct.pack("<I", 1) + _key_name(name)
            head += struct.pack("<I", ValueType.INT64.value) + struct.pack("<I", 8)
            return [head + struct.pack("<q", v) for v in values.cast(pa.int64()).to_pylist()]
    protos = {
        name: python_values_to_proto_values(
            _array(columns[name]).to_numpy(zero_copy_only=False), value_type
        )
        for name, value_type in join_keys.items()
    }
    rows = len(_array(next(iter(columns.values()))))
    return [
        serialize_entity_key(
            EntityKeyProto(
                join_keys=list(join_keys), entity_values=[protos[k][i] for k in join_keys]
            ),
            entity_key_serialization_version=version,
        )
        for i in range(rows)
    ]


def naive_utc(column: Column) -> list[datetime | None]:
    """Timestamps as the naive UTC datetimes Feast's conversion hands the online stores.

    Why through the distinct values: a run stamps every row it writes with one event time, so a
    batch holds a handful of instants, each converted once.
    """
    array = _array(column)
    if pa.types.is_timestamp(array.type):  # the epoch value in microseconds, whatever the zone
        array = pc.cast(array, pa.timestamp("us", tz=array.type.tz), safe=False)
    micros = pc.cast(array, pa.int64())
    if micros.null_count:
        return [
            None if m is None else _EPOCH + timedelta(microseconds=m) for m in micros.to_pylist()
        ]
    distinct, positions = np.unique(micros.to_numpy(), return_inverse=True)
    moments = [_EPOCH + timedelta(microseconds=int(m)) for m in distinct.tolist()]
    return [moments[p] for p in positions.tolist()]
