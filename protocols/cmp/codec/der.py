"""DER at the TLV level (X.690 8.1, 10, 11), checked on the raw bytes before any parsing:
definite, minimal lengths; constructed SEQUENCE/SET; primitive strings; canonical
BOOLEAN, INTEGER and NULL; bounded nesting. A walk over the bytes costs a few
microseconds per kilobyte, far less than re-encoding through asn1crypto."""

from __future__ import annotations

MAX_NESTING = 24
# Universal types DER always encodes primitive (X.690 10.2, 8.x): BOOLEAN, INTEGER, BIT
# STRING, OCTET STRING, NULL, OID, ENUMERATED, the string and time types.
_PRIMITIVE_ONLY = frozenset({1, 2, 3, 4, 5, 6, 10, 12, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 30})


class _NotDer(Exception):
    pass


def der_violation(data: bytes) -> str | None:
    """Why `data` is not exactly one DER TLV, or None: definite and minimal lengths,
    constructed SEQUENCE/SET, primitive strings, canonical BOOLEAN, INTEGER and NULL,
    bounded nesting. (SET OF order and omitted DEFAULTs are left to the schema.)"""
    try:
        end = _tlv(data, 0, len(data), 0)
    except _NotDer as exc:
        return f"not DER: {exc}"
    except IndexError:
        return "not DER: truncated"
    if end != len(data):
        return "not DER: bytes after the message"
    return None


def _tlv(data: bytes, pos: int, limit: int, depth: int) -> int:
    if depth > MAX_NESTING:
        raise _NotDer("nested too deeply")
    first = data[pos]
    pos += 1
    number = first & 0x1F
    if number == 0x1F:  # high tag number form: base 128, minimal, at least 31
        if data[pos] == 0x80:
            raise _NotDer("non-minimal tag number")
        number = 0
        while True:
            byte = data[pos]
            pos += 1
            number = (number << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
            if number > 0xFFFFFF:
                raise _NotDer("tag number too large")
        if number < 0x1F:
            raise _NotDer("high tag number form for a low tag")
    length = data[pos]
    pos += 1
    if length == 0x80:
        raise _NotDer("indefinite length")
    if length > 0x80:
        count = length & 0x7F
        if count > 4:
            raise _NotDer("length too large")
        raw = data[pos : pos + count]
        if len(raw) != count or raw[0] == 0:
            raise _NotDer("non-minimal length")
        length = int.from_bytes(raw, "big")
        if length < 0x80:
            raise _NotDer("non-minimal length")
        pos += count
    end = pos + length
    if end > limit:
        raise _NotDer("length beyond its container")
    constructed = bool(first & 0x20)
    if first >> 6 == 0:  # universal
        if number in (16, 17) and not constructed:
            raise _NotDer("primitive SEQUENCE or SET")
        if number in _PRIMITIVE_ONLY:
            if constructed:
                raise _NotDer("constructed string or value")
            value = data[pos:end]
            if number == 1 and value not in (b"\x00", b"\xff"):
                raise _NotDer("BOOLEAN is not 00 or FF")
            if number in (2, 10) and (
                not value or (len(value) > 1 and (value[:2] < b"\x00\x80" or value[:2] >= b"\xff\x80"))
            ):
                raise _NotDer("INTEGER not in its shortest form")
            if number == 5 and value:
                raise _NotDer("NULL with contents")
            if number == 3 and (not value or value[0] > 7 or (len(value) == 1 and value[0] != 0)):
                raise _NotDer("malformed BIT STRING")
    if constructed:
        inner = pos
        while inner < end:
            inner = _tlv(data, inner, end, depth + 1)
    return end


def der_sequence(contents: bytes) -> bytes:
    """A SEQUENCE around `contents`."""
    return b"\x30" + der_length(len(contents)) + contents


def der_length(n: int) -> bytes:
    """A DER length octets for `n` content octets."""
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw
