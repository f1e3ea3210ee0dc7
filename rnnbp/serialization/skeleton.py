"""The skeleton: a checkpoint's JSON document (format, version, per-array records, the object's tree).

Written and read at any depth the format allows, without recursion errors: the C ``json``
module does the work while it can (it recurses, and raises ``RecursionError`` past roughly
Python's recursion limit); deeper documents take an iterative writer and parser here. Beyond
:data:`MAX_DEPTH` levels a document is refused on both sides: ``save`` with a ``ValueError``,
``load`` (a damaged or forged file) by the caller as a ``CheckpointError``.
"""
from __future__ import annotations

import json
import math
import re
from json.decoder import scanstring
from json.encoder import encode_basestring_ascii
from json.scanner import NUMBER_RE

__all__ = ["FORMAT", "VERSION", "ENTRY", "MAX_DEPTH", "encode_root", "document", "parse"]

FORMAT = "rnnbp-checkpoint"
# 1: the tree only. 2: a record per array (dtype, shape, path). 3: the record adds crc32. All load.
VERSION = 3
ENTRY = "__rnnbp__"  # the archive entry holding the skeleton, a uint8 array of UTF-8 JSON
MAX_DEPTH = 20_000  # levels of JSON nesting; a list nested 5,000 deep takes 5,002 with the document
_SEPARATORS = (",", ":")
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_END = object()


# ------------------------------------------------------------------ writing
def encode_root(root) -> str:
    """The JSON text of the object's tree (its dicts, lists, strings, numbers, booleans and None).

    Raises:
        ValueError: the tree is nested more than ``MAX_DEPTH - 1`` levels deep (the document
            around it takes one more).
    """
    try:
        return json.dumps(root, ensure_ascii=True, allow_nan=False, separators=_SEPARATORS)
    except RecursionError:
        return _dumps_iteratively(root, MAX_DEPTH - 1)


def document(records: dict, root_text: str) -> bytes:
    """The whole skeleton as ASCII bytes, around a tree already encoded by :func:`encode_root`."""
    head = json.dumps({"format": FORMAT, "version": VERSION, "arrays": records},
                      ensure_ascii=True, allow_nan=False, separators=_SEPARATORS)
    return f'{head[:-1]},"root":{root_text}}}'.encode("ascii")


def _atom(value) -> str:
    if isinstance(value, str):
        return encode_basestring_ascii(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float) and math.isfinite(value):
        return float.__repr__(value)
    raise ValueError(f"the skeleton cannot hold {value!r} ({type(value).__name__})")


def _dumps_iteratively(root, max_depth: int) -> str:
    """``json.dumps`` with an explicit stack, for trees too deep for the C encoder."""
    parts: list[str] = []
    stack: list = []  # [iterator over the children, closing bracket, whether no child was written yet]
    value, pending = root, True
    while True:
        if pending:
            if isinstance(value, (dict, list)):
                if len(stack) >= max_depth:
                    raise ValueError(
                        f"save: the object is nested more than {max_depth} levels deep in the checkpoint's skeleton "
                        f"(rnnbp.load reads at most {MAX_DEPTH}); flatten it or save it in parts"
                    )
                is_dict = isinstance(value, dict)
                parts.append("{" if is_dict else "[")
                stack.append([iter(value.items() if is_dict else value), "}" if is_dict else "]", True])
            else:
                parts.append(_atom(value))
            pending = False
        if not stack:
            return "".join(parts)
        top = stack[-1]
        item = next(top[0], _END)
        if item is _END:
            parts.append(top[1])
            stack.pop()
            continue
        if not top[2]:
            parts.append(",")
        top[2] = False
        if top[1] == "}":
            key, value = item
            if not isinstance(key, str):
                raise ValueError(f"the skeleton cannot have the dict key {key!r}")
            parts.append(encode_basestring_ascii(key) + ":")
        else:
            value = item
        pending = True


# ------------------------------------------------------------------ reading
def parse(raw: bytes) -> dict:
    """The skeleton document from its bytes, checked to be an rnnbp skeleton of a version this rnnbp reads.

    Raises:
        ValueError: not UTF-8 JSON, nested more than ``MAX_DEPTH`` levels, not an rnnbp
            skeleton, or of a version this rnnbp cannot read; the message says which.
    """
    text = raw.decode("utf-8")
    try:
        doc = json.loads(text)
    except RecursionError:
        doc = _loads_iteratively(text, MAX_DEPTH)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"it is JSON but not an rnnbp skeleton (no \"format\": {FORMAT!r})")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= VERSION:
        raise ValueError(f"it has format version {version!r}; this rnnbp reads versions 1 to {VERSION} (upgrade rnnbp)")
    if "root" not in doc:
        raise ValueError("it has no \"root\" (the saved object)")
    return doc


def _string(text: str, pos: int):
    if text.startswith('"', pos):
        return scanstring(text, pos + 1)
    raise ValueError(f"expected a string at character {pos}")


def _key(text: str, pos: int):
    key, pos = _string(text, pos)
    pos = _WHITESPACE.match(text, pos).end()
    if not text.startswith(":", pos):
        raise ValueError(f"expected ':' at character {pos}")
    return key, _WHITESPACE.match(text, pos + 1).end()


def _loads_iteratively(text: str, max_depth: int):
    """``json.loads`` with an explicit stack, for documents too deep for the C parser; refuses beyond ``max_depth``."""
    stack: list = []  # [the list or dict being filled, the key its next value goes under]
    pos = _WHITESPACE.match(text, 0).end()
    while True:
        # One value starts at pos: open a container (and go on to its first value), or read an atom.
        char = text[pos:pos + 1]
        if char in ("[", "{"):
            if len(stack) >= max_depth:
                raise ValueError(f"it is nested more than {max_depth} levels deep, which rnnbp.save never writes")
            container = [] if char == "[" else {}
            pos = _WHITESPACE.match(text, pos + 1).end()
            if text.startswith("]" if char == "[" else "}", pos):
                value, pos = container, pos + 1
            else:
                key = None
                if char == "{":
                    key, pos = _key(text, pos)
                stack.append([container, key])
                continue
        elif char == '"':
            value, pos = scanstring(text, pos + 1)
        elif text.startswith("true", pos):
            value, pos = True, pos + 4
        elif text.startswith("false", pos):
            value, pos = False, pos + 5
        elif text.startswith("null", pos):
            value, pos = None, pos + 4
        else:
            match = NUMBER_RE.match(text, pos)
            if match is None:
                raise ValueError(f"unexpected {char!r} at character {pos}")
            integer, fraction, exponent = match.groups()
            value = float(integer + (fraction or "") + (exponent or "")) if fraction or exponent else int(integer)
            pos = match.end()
        # Put the value in its container; close every container that ends here.
        while True:
            pos = _WHITESPACE.match(text, pos).end()
            if not stack:
                if pos != len(text):
                    raise ValueError(f"extra data at character {pos}")
                return value
            container, key = stack[-1]
            if key is None:
                container.append(value)
            else:
                container[key] = value
            char = text[pos:pos + 1]
            if char == ",":
                pos = _WHITESPACE.match(text, pos + 1).end()
                if key is not None:
                    stack[-1][1], pos = _key(text, pos)
                break
            closing = "]" if key is None else "}"
            if char != closing:
                raise ValueError(f"expected ',' or {closing!r} at character {pos}")
            value, pos = container, pos + 1
            stack.pop()
