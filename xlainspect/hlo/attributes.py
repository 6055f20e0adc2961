"""Reading the values of instruction attributes: ``backend_config``, ``metadata``-style key/value lists, name lists.

These run on demand, after parsing, on text the parser has already checked for balance. They never raise: a value
that does not fit the expected form comes back as its text (backend_config) or as what could be read (key/values),
because a config format XLA adds tomorrow must not make today's module unreadable.
"""

from __future__ import annotations

import json
import re
from typing import Any

_STRING = r'"(?:[^"\\]|\\.)*"'
_KEY_VALUE_RE = re.compile(r"([\w.\-]+)\s*=\s*(" + _STRING + r"|'(?:[^'\\]|\\.)*'|[^\s,{}]+)")
_NAME_RE = re.compile(r"%?([A-Za-z_][\w.\-]*)")
# Relaxed JSON: a quoted string (kept), or an identifier used as an object key (to be quoted).
_RELAXED_TOKEN_RE = re.compile(_STRING + r"|([A-Za-z_][\w.\-]*)(\s*:)")
_BARE_WORD_RE = re.compile(_STRING + r"|(?<![\w.\-\"])([A-Za-z_][\w.\-$]*)(?![\w.\-]*\s*:)")
_TRAILING_COMMA_RE = re.compile(r",(\s*[}\]])")
_MLIR_ENTRY_RE = re.compile(r"\s*([\w.\-]+)\s*=\s*(" + _STRING + r"|[^,:}]+?)\s*(?::\s*[\w<>x]+)?\s*(?:,|$)")
_JSON_WORDS = {"true", "false", "null"}


_ESCAPE_RE = re.compile(r"\\(x[0-9A-Fa-f]{1,2}|[0-7]{1,3}|.)", re.S)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def unescape(text: str) -> str:
    """The content of a C-escaped string literal body (no surrounding quotes), as XLA's lexer unescapes it.

    ``\\xHH`` and octal escapes are bytes (UTF-8 when several make one character); an unknown escape such as
    ``\\m`` keeps its character, as Python's own codec did before it deprecated them.
    """
    if "\\" not in text:
        return text
    out = bytearray()
    position = 0
    for match in _ESCAPE_RE.finditer(text):
        out += text[position:match.start()].encode("utf-8")
        escape = match.group(1)
        if escape[0] == "x" and len(escape) > 1:
            out.append(int(escape[1:], 16))
        elif escape[0] in "01234567":
            out.append(int(escape, 8) & 0xFF)
        else:
            out += _SIMPLE_ESCAPES.get(escape, escape).encode("utf-8")
        position = match.end()
    out += text[position:].encode("utf-8")
    return out.decode("utf-8", errors="replace")


def unquote(text: str) -> str:
    """A quoted literal's content, unescaped; any other text unchanged."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return unescape(text[1:-1])
    return text


def parse_key_values(text: str) -> dict[str, str]:
    """``{op_type="Add" op_name="a/b" source_line=3}`` or ``{k="v",k2="w"}`` as a dict of unquoted strings."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    return {key: unquote(value) for key, value in _KEY_VALUE_RE.findall(body)}


def parse_called_names(text: str) -> tuple[str, ...]:
    """``%body``, ``{%a, %b}`` or ``{a,b}`` as a tuple of names without ``%``."""
    return tuple(_NAME_RE.findall(text))


def parse_backend_config(text: str) -> dict[str, Any] | str:
    """A backend config as a dict when it is JSON in any of the forms XLA writes, else its text.

    Forms: plain JSON; a quoted string holding escaped JSON; relaxed JSON (unquoted keys, bare enum words, trailing
    commas) spread over lines; an MLIR-style dict ``{index = 0 : ui64}``. A quoted string that is not JSON comes back
    unquoted.
    """
    stripped = text.strip()
    if stripped[:1] in "\"'":
        inner = unquote(stripped)
        parsed = _parse_json_like(inner.strip())
        return inner if parsed is None else parsed
    parsed = _parse_json_like(stripped)
    return stripped if parsed is None else parsed


def _parse_json_like(text: str) -> dict[str, Any] | None:
    if not text.startswith("{"):
        return None
    for candidate in (text, _relaxed_to_json(text)):
        try:
            value = json.loads(candidate)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    return _parse_mlir_dict(text)


def _relaxed_to_json(text: str) -> str:
    quoted_keys = _RELAXED_TOKEN_RE.sub(lambda m: f'"{m.group(1)}"{m.group(2)}' if m.group(1) else m.group(0), text)
    quoted_words = _BARE_WORD_RE.sub(
        lambda m: f'"{m.group(1)}"' if m.group(1) and m.group(1) not in _JSON_WORDS else m.group(0), quoted_keys
    )
    return _TRAILING_COMMA_RE.sub(r"\1", quoted_words)


def _parse_mlir_dict(text: str) -> dict[str, Any] | None:
    body = text[1:-1] if text.endswith("}") else None
    if body is None or "=" not in body:
        return None
    result: dict[str, Any] = {}
    pos = 0
    while pos < len(body):
        match = _MLIR_ENTRY_RE.match(body, pos)
        if match is None or match.end() == pos:
            return None
        result[match.group(1)] = _scalar(match.group(2).strip())
        pos = match.end()
    return result


def _scalar(text: str) -> Any:
    if text.startswith('"'):
        return unquote(text)
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text, text)
