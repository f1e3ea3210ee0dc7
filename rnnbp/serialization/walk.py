"""Walking deeply nested objects without recursion: a trampoline, and places in the object named lazily.

Saving a list nested 5,000 deep, or loading a skeleton nested as deep, must not hit Python's
recursion limit. The encoder and decoder are written as generators: where a recursive walk
would call itself on a child, they ``yield`` the child's generator and get its result sent
back. :class:`Trampoline` runs them with an explicit stack, so depth costs heap, not C stack.

A walk also names where it is (``obj['model'].rnn.weight_ih_l0``) for messages and array
records. Building that text at every level would cost O(depth^2); :class:`Where` keeps a link
to its parent and renders the text only when asked.
"""
from __future__ import annotations

from types import GeneratorType

import numpy as np

__all__ = ["Trampoline", "Where", "label"]

_MAX_SHOWN = 200  # longer places are shown with their middle elided


class Trampoline:
    """Runs generator-based walks: a generator yields the work it needs done and gets its result back.

    A generator may yield another generator (run it to completion and send back its return
    value) or a finished value (sent straight back, so leaves cost no frame). ``depth`` is the
    number of generators running, one per level of nesting being walked.
    """

    def __init__(self):
        self.stack: list = []

    @property
    def depth(self) -> int:
        return len(self.stack)

    def run(self, work):
        """The result of ``work``: a generator run to completion, or ``work`` itself if it is a value."""
        if not isinstance(work, GeneratorType):
            return work
        stack = self.stack
        base = len(stack)
        stack.append(work)
        value = None
        try:
            while True:
                try:
                    request = stack[-1].send(value)
                except StopIteration as stop:
                    stack.pop()
                    if len(stack) == base:
                        return stop.value
                    value = stop.value
                    continue
                if isinstance(request, GeneratorType):
                    stack.append(request)
                    value = None
                else:
                    value = request
        finally:
            del stack[base:]


def label(key) -> str:
    """A dict key or set item as a message shows it: repr of plain values, the type of others (a Parameter)."""
    plain = (str, int, float, bool, type(None), tuple, np.generic)
    if isinstance(key, plain):
        try:
            text = repr(key)
        except (RecursionError, ValueError):  # a tuple nested thousands deep; an int of 5,000 digits
            text = ""
        if 0 < len(text) <= 80:
            return text
    return f"<{type(key).__name__}>"


class Where:
    """A place in the saved object, such as ``obj['param_groups'][0]['lr']``, rendered only when shown.

    ``Where.root("obj")`` is the object itself; ``.key(k)`` gives ``[k]`` (``k`` shown by
    :func:`label`), ``.attr(name)`` gives ``.name``, ``.text(s)`` appends ``s`` as it is,
    ``.labelled(" key ", k)`` appends `` key k``.
    ``str()`` joins the parts, eliding the middle of places longer than 200 characters.
    """

    __slots__ = ("parent", "kind", "part")

    def __init__(self, parent, kind: str, part):
        self.parent, self.kind, self.part = parent, kind, part

    @classmethod
    def root(cls, name: str) -> "Where":
        return cls(None, "text", name)

    def key(self, key) -> "Where":
        return Where(self, "key", key)

    def attr(self, name: str) -> "Where":
        return Where(self, "attr", name)

    def text(self, suffix: str) -> "Where":
        return Where(self, "text", suffix)

    def labelled(self, prefix: str, key) -> "Where":
        """``prefix`` then ``key`` as :func:`label` shows it: ``obj key 3``, ``obj item 'a'``."""
        return Where(self, "labelled", (prefix, key))

    def __str__(self) -> str:
        parts = []
        node = self
        while node is not None:
            if node.kind == "key":
                parts.append(f"[{label(node.part)}]")
            elif node.kind == "attr":
                parts.append(f".{node.part}")
            elif node.kind == "labelled":
                parts.append(f"{node.part[0]}{label(node.part[1])}")
            else:
                parts.append(node.part)
            node = node.parent
        text = "".join(reversed(parts))
        if len(text) <= _MAX_SHOWN:
            return text
        keep = _MAX_SHOWN // 2 - 20
        return f"{text[:keep]}...({len(text) - 2 * keep} characters)...{text[-keep:]}"

    __repr__ = __str__
