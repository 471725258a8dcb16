"""User strings made safe to print: a preset name from a shared TOML file,
a --text, a file's key must never reach a terminal as an escape sequence or
a second line."""

from __future__ import annotations

ESCAPES = {o: f"\\x{o:02x}" for o in (*range(0x20), *range(0x7F, 0xA0))}
ESCAPES.update({ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r"})


def printable(text: object, limit: int | None = None) -> str:
    """`text` safe to echo on a terminal: each C0/C1 control and DEL as \\xNN
    (\\n, \\t, \\r), any other invisible character (format, separator, bidi,
    unassigned) as \\uNNNN; cut to `limit` characters with '...' if given."""
    s = str(text)
    if limit is not None and len(s) > limit:
        s = s[:limit] + "..."
    s = s.translate(ESCAPES)
    if not s.isprintable():
        s = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}" for ch in s)
    return s
