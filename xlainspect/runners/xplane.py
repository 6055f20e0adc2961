"""Reading XLA's profiler files (``*.xplane.pb``) without TensorFlow's or anyone's protobuf classes.

Owns the protobuf wire format of ``tsl/profiler/protobuf/xplane.proto`` (XSpace, XPlane, XLine, XEvent, XStat and
the two metadata maps) and the one question the timing children ask of a profile: which HLO instruction of which
module ran when, and when did each run mark start. TF reads these files with its ``xplane_pb2`` and JAX with
``ProfileData``, but PyTorch/XLA's environment has neither TensorFlow nor the ``protobuf`` package, and its
profiler writes the same XPlane files; a reader in the standard library alone serves all three.

Only the fields the question needs are decoded; every other field is skipped by its wire type, so a newer
``xplane.proto`` that adds fields still reads. The field numbers below were taken from the serialized descriptor in
TensorFlow 2.21's ``tensorflow/tsl/profiler/protobuf/xplane_pb2.py``, not from memory.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from xlainspect.errors import InputError

__all__ = ["HloOpEvent", "XPlaneError", "XPlaneProfile", "read_xplane"]

# Wire types (https://protobuf.dev/programming-guides/encoding/).
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5

# xplane.proto field numbers, from TF 2.21's serialized descriptor (package tensorflow.profiler, proto3).
_SPACE_PLANES = 1                                   # XSpace.planes: repeated XPlane
_PLANE_LINES, _PLANE_EVENT_METADATA, _PLANE_STAT_METADATA = 3, 4, 5  # XPlane: repeated XLine; map<int64, XEventMetadata>; map<int64, XStatMetadata>
_MAP_KEY, _MAP_VALUE = 1, 2                         # every map<K, V> entry
_LINE_TIMESTAMP_NS, _LINE_EVENTS = 3, 4             # XLine.timestamp_ns: int64; XLine.events: repeated XEvent
_EVENT_METADATA_ID, _EVENT_OFFSET_PS, _EVENT_DURATION_PS, _EVENT_STATS = 1, 2, 3, 4  # XEvent
_EVENT_NUM_OCCURRENCES = 5                          # XEvent: shares the oneof "data" with offset_ps
_STAT_METADATA_ID = 1                               # XStat.metadata_id; its oneof value is fields 2-7:
_STAT_DOUBLE, _STAT_UINT64, _STAT_INT64, _STAT_STR, _STAT_BYTES, _STAT_REF = 2, 3, 4, 5, 6, 7
_METADATA_NAME = 2                                  # XEventMetadata.name and XStatMetadata.name

_INT64_SIGN = 1 << 63


class XPlaneError(InputError):
    """A ``.xplane.pb`` file that is not a whole XSpace message: truncated, or not protobuf at all.

    Attributes:
        path: the file.
        offset: the byte offset in the file where reading failed.
        message: what was found there.
    """

    def __init__(self, path: str, offset: int, message: str) -> None:
        self.path = path
        self.offset = offset
        self.message = message
        super().__init__(f"{path}: not a readable XPlane profile (byte {offset}: {message}); was the profiler "
                         "stopped before the file was written?")

    def __reduce__(self):  # keep pickling (multiprocessing, pytest-xdist) working with the custom __init__
        return (type(self), (self.path, self.offset, self.message))


@dataclass(frozen=True)
class HloOpEvent:
    """One execution of an HLO instruction, as the profiler recorded it.

    Attributes:
        hlo_module: the ``hlo_module`` stat: the XLA module's name (``jit_f``, ``a_inference_f_12__...``, ``foo``).
        hlo_op: the ``hlo_op`` stat: the instruction's name in the module's optimized HLO.
        start_us: the line's ``timestamp_ns`` plus the event's ``offset_ps``, in µs; host planes share this clock.
        duration_us: the event's ``duration_ps`` in µs.
    """

    hlo_module: str
    hlo_op: str
    start_us: float
    duration_us: float


@dataclass(frozen=True)
class XPlaneProfile:
    """What one or more XPlane files say about HLO execution.

    Attributes:
        events: every event that carries both an ``hlo_op`` and an ``hlo_module`` stat, in file order.
        marks: the start (µs) of each event whose name begins with the mark prefix, by name. A name seen twice keeps
            its last start, as a dictionary filled in file order would.
    """

    events: tuple[HloOpEvent, ...]
    marks: dict[str, float]


class _Truncated(Exception):
    """Internal: where and why decoding stopped; :func:`read_xplane` turns it into an :class:`XPlaneError`."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """The unsigned varint at ``pos`` and the position after it."""
    result = shift = 0
    start = pos
    while True:
        if pos >= end:
            raise _Truncated(start, "a varint runs past the end of its message")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _Truncated(start, "a varint longer than 10 bytes")


def _fields(data: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int | bytes | tuple[int, int]]]:
    """The fields of the message in ``data[pos:end]``: ``(number, wire type, value)``.

    A varint's value is an int, a fixed 64- or 32-bit value its raw bytes, a length-delimited value its
    ``(start, end)`` span in ``data`` (so nested messages are read in place, not copied).
    """
    while pos < end:
        tag_at = pos
        tag, pos = _varint(data, pos, end)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise _Truncated(tag_at, "a field numbered 0")
        if wire == _VARINT:
            value, pos = _varint(data, pos, end)
            yield number, wire, value
        elif wire == _LEN:
            length, pos = _varint(data, pos, end)
            if pos + length > end:
                raise _Truncated(tag_at, f"field {number} claims {length} bytes, {end - pos} are left")
            yield number, wire, (pos, pos + length)
            pos += length
        elif wire in (_I64, _I32):
            size = 8 if wire == _I64 else 4
            if pos + size > end:
                raise _Truncated(tag_at, f"a fixed-size field {number} runs past the end of its message")
            yield number, wire, data[pos:pos + size]
            pos += size
        else:  # groups (3, 4) are proto2-only and absent from xplane.proto; 6 and 7 do not exist
            raise _Truncated(tag_at, f"wire type {wire} in field {number}")


def _int64(value: int) -> int:
    """A varint read as proto ``int64`` (negative numbers are sent as 64-bit two's complement)."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value & _INT64_SIGN else value


def _text(data: bytes, span: tuple[int, int]) -> str:
    # Profiler names are UTF-8 by contract; a stray byte should not cost the whole profile.
    return data[span[0]:span[1]].decode("utf-8", errors="replace")


def _metadata_names(data: bytes, span: tuple[int, int]) -> tuple[int, str]:
    """A ``map<int64, X*Metadata>`` entry as ``(key, name)``."""
    key, name = 0, ""
    for number, wire, value in _fields(data, *span):
        if number == _MAP_KEY and wire == _VARINT:
            key = _int64(value)
        elif number == _MAP_VALUE and wire == _LEN:
            for inner, inner_wire, inner_value in _fields(data, *value):
                if inner == _METADATA_NAME and inner_wire == _LEN:
                    name = _text(data, inner_value)
    return key, name


def _stat(data: bytes, span: tuple[int, int], stat_names: dict[int, str]) -> tuple[str | None, object]:
    """An XStat as ``(name, value)``; a ``ref_value`` is resolved to the stat-metadata name it refers to.

    Like TF's ``xplane_pb2`` readers, the last of the oneof's fields present wins, and a stat with no value gives
    ``None``.
    """
    metadata_id, value = 0, None
    for number, wire, raw in _fields(data, *span):
        if number == _STAT_METADATA_ID and wire == _VARINT:
            metadata_id = _int64(raw)
        elif number == _STAT_DOUBLE and wire == _I64:
            value = struct.unpack("<d", raw)[0]
        elif number == _STAT_UINT64 and wire == _VARINT:
            value = raw
        elif number == _STAT_INT64 and wire == _VARINT:
            value = _int64(raw)
        elif number == _STAT_STR and wire == _LEN:
            value = _text(data, raw)
        elif number == _STAT_BYTES and wire == _LEN:
            value = data[raw[0]:raw[1]]
        elif number == _STAT_REF and wire == _VARINT:
            value = stat_names.get(raw)
    return stat_names.get(metadata_id), value


def _plane(data: bytes, span: tuple[int, int], mark_prefix: str,
           events: list[HloOpEvent], marks: dict[str, float]) -> None:
    """Adds one XPlane's HLO-op events and marks to ``events`` and ``marks``."""
    # Metadata maps may follow the lines on the wire (protobuf fixes no field order): read them first.
    event_names: dict[int, str] = {}
    stat_names: dict[int, str] = {}
    lines: list[tuple[int, int]] = []
    for number, wire, value in _fields(data, *span):
        if wire != _LEN:
            continue
        if number == _PLANE_LINES:
            lines.append(value)
        elif number == _PLANE_EVENT_METADATA:
            key, name = _metadata_names(data, value)
            event_names[key] = name
        elif number == _PLANE_STAT_METADATA:
            key, name = _metadata_names(data, value)
            stat_names[key] = name
    for line in lines:
        timestamp_ns = 0
        line_events: list[tuple[int, int]] = []
        for number, wire, value in _fields(data, *line):
            if number == _LINE_TIMESTAMP_NS and wire == _VARINT:
                timestamp_ns = _int64(value)
            elif number == _LINE_EVENTS and wire == _LEN:
                line_events.append(value)
        for event in line_events:
            metadata_id = offset_ps = duration_ps = 0
            stats: dict[str | None, object] = {}
            for number, wire, value in _fields(data, *event):
                if number == _EVENT_METADATA_ID and wire == _VARINT:
                    metadata_id = _int64(value)
                elif number == _EVENT_OFFSET_PS and wire == _VARINT:
                    offset_ps = _int64(value)
                elif number == _EVENT_NUM_OCCURRENCES and wire == _VARINT:
                    offset_ps = 0  # an aggregated event: setting the oneof's other member clears the offset
                elif number == _EVENT_DURATION_PS and wire == _VARINT:
                    duration_ps = _int64(value)
                elif number == _EVENT_STATS and wire == _LEN:
                    name, stat_value = _stat(data, value, stat_names)
                    stats[name] = stat_value
            start_us = timestamp_ns / 1e3 + offset_ps / 1e6
            if mark_prefix and event_names.get(metadata_id, "").startswith(mark_prefix):
                marks[event_names[metadata_id]] = start_us
            if "hlo_op" in stats and "hlo_module" in stats:
                events.append(HloOpEvent(str(stats["hlo_module"]), str(stats["hlo_op"]), start_us,
                                         duration_ps / 1e6))


def read_xplane(paths: str | list[str] | tuple[str, ...], mark_prefix: str = "") -> XPlaneProfile:
    """The HLO-op events and run marks of one or more ``.xplane.pb`` files (an XSpace message each).

    Times are those TF's and JAX's readers give: an event starts at its line's ``timestamp_ns`` plus its
    ``offset_ps`` and lasts ``duration_ps``, both in µs here. Stats are matched by their metadata's name, so
    ``hlo_op`` and ``hlo_module`` are found whatever ids a writer gave them, and a ``ref_value`` stat (an id
    standing for a string stored once in the stat metadata) reads as that string.

    Args:
        paths: one file or several; several are read in order, their events concatenated.
        mark_prefix: events whose name starts with it are run marks; "" collects none.

    Returns:
        The events carrying both ``hlo_op`` and ``hlo_module``, and the marks' starts by name.

    Raises:
        InputError: a file cannot be read.
        XPlaneError: a file is empty, truncated or not an XSpace message. Protobuf has no overall length, so a file
            cut exactly between two planes cannot be told from a shorter profile; any other cut lands inside a plane
            whose length prefix then claims more bytes than are left.
    """
    events: list[HloOpEvent] = []
    marks: dict[str, float] = {}
    for path in [paths] if isinstance(paths, str) else paths:
        try:
            with open(path, "rb") as file:
                data = file.read()
        except OSError as error:
            raise InputError(f"{path}: cannot read the profile: {error.strerror or error}") from error
        try:
            if not data:  # an XSpace without planes is 0 bytes too, but no profiler writes one: it was cut short
                raise _Truncated(0, "the file is empty")
            for number, wire, value in _fields(data, 0, len(data)):
                if number == _SPACE_PLANES:
                    if wire != _LEN:
                        raise _Truncated(0, f"XSpace.planes has wire type {wire}, not a message")
                    _plane(data, value, mark_prefix, events, marks)
        except _Truncated as error:
            raise XPlaneError(path, error.offset, error.message) from None
    return XPlaneProfile(tuple(events), marks)
