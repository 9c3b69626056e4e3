"""AMQP 0-9-1 field tables as the wire carries them, independent of any client library.

A *typed* value is a pair (tag, value) keeping the exact field type:

    ("t", 0|1)            boolean (the raw octet)
    ("b", int)  ("B", int)  ("s", int)  ("u", int)  ("I", int)  ("i", int)  ("l", int)
                           signed/unsigned 8, 16, 32 bit, signed 64 bit (RabbitMQ's set)
    ("f", bytes4) ("d", bytes8)   float/double, kept as raw IEEE bits (NaN and -0.0 compare)
    ("D", (scale, int))   decimal: scale octet and signed 32-bit unscaled value
    ("S", bytes)          long string      ("x", bytes)   byte array
    ("T", int)            timestamp (unsigned 64-bit seconds)
    ("V", None)           void
    ("A", [typed...])     array            ("F", [(key, typed)...])   table, in wire order

`encode_table`/`parse_table` turn an ordered list of (key, typed) into wire bytes and back.
`Raw` lets a client library that has no way to emit some field type (pika has no 8/16-bit
ints, unsigned ints or floats) put pre-encoded field values into its headers.
"""

import struct

_FIXED = {
    "t": ">B", "b": ">b", "B": ">B", "s": ">h", "u": ">H",
    "I": ">i", "i": ">I", "l": ">q", "T": ">Q",
}


def encode_value(typed):
    tag, value = typed
    t = tag.encode()
    if tag in _FIXED:
        return t + struct.pack(_FIXED[tag], value)
    if tag in ("f", "d"):
        assert len(value) == (4 if tag == "f" else 8)
        return t + value
    if tag == "D":
        scale, raw = value
        return t + struct.pack(">Bi", scale, raw)
    if tag in ("S", "x"):
        return t + struct.pack(">I", len(value)) + value
    if tag == "V":
        return t
    if tag == "A":
        body = b"".join(encode_value(v) for v in value)
        return t + struct.pack(">I", len(body)) + body
    if tag == "F":
        return t + encode_table(value)
    raise ValueError(f"unknown field type {tag!r}")


def encode_table(items):
    body = b""
    for key, typed in items:
        k = key.encode() if isinstance(key, str) else key
        assert len(k) <= 255
        body += struct.pack(">B", len(k)) + k + encode_value(typed)
    return struct.pack(">I", len(body)) + body


def parse_value(buf, off):
    tag = chr(buf[off])
    off += 1
    if tag in _FIXED:
        fmt = _FIXED[tag]
        return (tag, struct.unpack_from(fmt, buf, off)[0]), off + struct.calcsize(fmt)
    if tag == "f":
        return (tag, bytes(buf[off:off + 4])), off + 4
    if tag == "d":
        return (tag, bytes(buf[off:off + 8])), off + 8
    if tag == "D":
        scale, raw = struct.unpack_from(">Bi", buf, off)
        return (tag, (scale, raw)), off + 5
    if tag in ("S", "x"):
        (n,) = struct.unpack_from(">I", buf, off)
        off += 4
        return (tag, bytes(buf[off:off + n])), off + n
    if tag == "V":
        return (tag, None), off
    if tag == "A":
        (n,) = struct.unpack_from(">I", buf, off)
        off += 4
        end = off + n
        items = []
        while off < end:
            v, off = parse_value(buf, off)
            items.append(v)
        assert off == end, "array length mismatch"
        return (tag, items), off
    if tag == "F":
        items, off = parse_table(buf, off)
        return (tag, items), off
    raise ValueError(f"unknown field type {tag!r} at offset {off - 1}")


def parse_table(buf, off=0):
    (n,) = struct.unpack_from(">I", buf, off)
    off += 4
    end = off + n
    items = []
    while off < end:
        klen = buf[off]
        key = bytes(buf[off + 1:off + 1 + klen]).decode("utf-8")
        off += 1 + klen
        v, off = parse_value(buf, off)
        items.append((key, v))
    assert off == end, "table length mismatch"
    return items, off


def headers_of_basic_properties(raw):
    """The headers table (ordered typed items) from an encoded basic.properties property
    list (flags, then the fields), or None when the headers flag is clear."""
    flags = 0
    off = 0
    word = 0
    while True:
        (part,) = struct.unpack_from(">H", raw, off)
        off += 2
        flags |= part << (word * 16)
        word += 1
        if not part & 1:
            break
    for bit in (15, 14):  # content_type, content_encoding: short strings before headers
        if flags & (1 << bit):
            off += 1 + raw[off]
    if not flags & (1 << 13):
        return None
    items, _ = parse_table(raw, off)
    return items


def assert_same_items(got_items, sent_items):
    """Typed tables equal field by field (names, order, tags, values), with a useful
    message for the first difference."""
    assert got_items is not None, "no headers came back"
    for (gk, gv), (sk, sv) in zip(got_items, sent_items):
        assert (gk, gv) == (sk, sv), f"field {sk!r}: sent {sv!r}, got {gk!r} {gv!r}"
    assert len(got_items) == len(sent_items), (
        f"sent {len(sent_items)} fields, got {len(got_items)}: {got_items!r}")


class Raw:
    """A pre-encoded field value (type tag included) for a client library's encoder."""

    def __init__(self, typed):
        self.typed = typed
        self.wire = encode_value(typed)

    def __repr__(self):
        return f"Raw({self.typed!r})"


def f32(x):
    return struct.pack(">f", x)


def f64(x):
    return struct.pack(">d", x)


#: Every field type RabbitMQ knows, with edge values, as one ordered table. Infinities and
#: NaNs are left out: RabbitMQ (Erlang floats have neither) cannot decode them and closes
#: the connection with 541 INTERNAL_ERROR.
ALL_TYPES = [
    ("bool-false", ("t", 0)),
    ("bool-true", ("t", 1)),
    ("int8-min", ("b", -128)),
    ("int8-max", ("b", 127)),
    ("uint8-max", ("B", 255)),
    ("uint8-zero", ("B", 0)),
    ("int16-min", ("s", -32768)),
    ("int16-max", ("s", 32767)),
    ("uint16-max", ("u", 65535)),
    ("int32-min", ("I", -(2**31))),
    ("int32-max", ("I", 2**31 - 1)),
    ("uint32-max", ("i", 2**32 - 1)),
    ("int64-min", ("l", -(2**63))),
    ("int64-max", ("l", 2**63 - 1)),
    ("float", ("f", f32(1.5))),
    ("float-neg-zero", ("f", f32(-0.0))),
    ("double", ("d", f64(3.141592653589793))),
    ("double-tiny", ("d", f64(5e-324))),
    ("decimal", ("D", (3, 12345))),
    ("decimal-neg", ("D", (2, -(2**31)))),
    ("decimal-int", ("D", (0, 7))),
    ("string", ("S", "grüße ✓".encode())),
    ("string-empty", ("S", b"")),
    ("string-binary", ("S", b"\x00\xff\x80nul")),
    ("bytes", ("x", bytes(range(256)))),
    ("bytes-empty", ("x", b"")),
    ("timestamp", ("T", 1700000000)),
    ("timestamp-zero", ("T", 0)),
    ("timestamp-far", ("T", 253402300799)),
    ("void", ("V", None)),
    ("array", ("A", [("b", -1), ("S", b"two"), ("t", 1), ("V", None), ("d", f64(0.5)),
                     ("A", [("I", 1), ("A", [])]), ("F", [("k", ("S", b"v"))])])),
    ("array-empty", ("A", [])),
    ("table", ("F", [("inner", ("F", [("deep", ("F", [("x", ("l", -1))]))])),
                     ("list", ("A", [("u", 1), ("u", 2)])),
                     ("void", ("V", None))])),
    ("table-empty", ("F", [])),
    ("", ("S", b"empty key")),
    ("k" * 255, ("S", b"longest key")),
    ("ключ", ("S", b"unicode key")),
]
