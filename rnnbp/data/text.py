"""Character-level text corpora: a vocabulary, tiny-shakespeare, its split, and time-major streams.

Stream training (char-rnn, PyTorch's ``word_language_model``) cuts one long id sequence
into B contiguous rows and reads them side by side, time-major::

    ids    = vocab.encode(text)                   # (N_chars,)
    stream = stream_batches(ids, batch_size=B)    # (T_total, B); column b is one stretch of text
    x, y   = stream_pairs(stream)                 # (T_total - 1, B) each; y[t] = x[t + 1]

A truncated-BPTT engine takes ``x`` and ``y`` whole and walks them in chunks, carrying
the hidden state from one chunk to the next; ``stream_chunks`` yields those chunks
for a hand-written loop.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from ..validation import check_int
from .download import fetch

__all__ = [
    "CharVocab", "TextCorpus", "load_tiny_shakespeare", "split_text",
    "stream_batches", "stream_pairs", "stream_chunks",
    "TINY_SHAKESPEARE_URL", "TINY_SHAKESPEARE_SHA256", "TINY_SHAKESPEARE_CHARS",
]

TINY_SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
TINY_SHAKESPEARE_CHARS = 1_115_394


# ------------------------------------------------------------------ vocab
def _code_points(text: str) -> np.ndarray:
    """Unicode code points of ``text`` as uint32, without a Python loop over characters."""
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")


class CharVocab:
    """A sorted set of characters; character ``i`` of the sorted order has id ``i``.

    Sorting makes the ids a function of the character set alone, so the same text
    always gives the same vocabulary. ``state_dict()`` is a dict holding one string,
    which ``rnnbp.save`` stores in a checkpoint beside the model's weights.

    Args:
        chars : Iterable[str]. Characters (or strings, whose characters are taken);
            duplicates are dropped.
    """

    def __init__(self, chars: Iterable[str]):
        unique = sorted(set("".join(chars)))
        if not unique:
            raise ValueError("CharVocab: expected at least one character, got none")
        self._chars = "".join(unique)
        self._codes = _code_points(self._chars)  # sorted, so searchsorted maps chars to ids

    @classmethod
    def from_text(cls, text: str) -> "CharVocab":
        """The vocabulary of every character in ``text``."""
        return cls(text)

    @property
    def chars(self) -> str:
        """All characters in id order."""
        return self._chars

    def __len__(self) -> int:
        return len(self._chars)

    def __contains__(self, char: str) -> bool:
        return len(char) == 1 and char in self._chars

    def __eq__(self, other) -> bool:
        return isinstance(other, CharVocab) and other._chars == self._chars

    def __hash__(self) -> int:
        return hash(self._chars)

    def __repr__(self) -> str:
        return f"CharVocab({len(self)} chars: {self._chars[:40]!r}{'...' if len(self) > 40 else ''})"

    def encode(self, text: str) -> np.ndarray:
        """The ids of ``text``'s characters.

        Returns:
            np.ndarray [shape=(len(text),), dtype=int64].

        Raises:
            ValueError: ``text`` has characters outside the vocabulary; all are named.
        """
        codes = _code_points(text)
        ids = np.searchsorted(self._codes, codes)
        ids_clipped = np.minimum(ids, len(self._codes) - 1)
        unknown = self._codes[ids_clipped] != codes
        if unknown.any():
            bad = sorted(set(text[i] for i in np.flatnonzero(unknown)[:1000]))
            raise ValueError(f"CharVocab.encode: {int(unknown.sum())} character(s) not in the vocabulary: "
                             f"{''.join(bad)!r} (first at index {int(np.argmax(unknown))})")
        return ids.astype(np.int64)

    def decode(self, ids) -> str:
        """The text of a 1-D sequence of ids (an array, list or Tensor's ``.numpy()``).

        Raises:
            ValueError: ``ids`` is not 1-D, not integral, or has ids outside [0, len(self)).
        """
        ids = np.asarray(ids)
        if ids.ndim != 1:
            raise ValueError(f"CharVocab.decode: expected a 1-D sequence of ids, got shape {ids.shape}")
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"CharVocab.decode: expected integer ids, got dtype {ids.dtype}")
        bad = (ids < 0) | (ids >= len(self))
        if bad.any():
            raise ValueError(f"CharVocab.decode: ids must be in [0, {len(self)}), got "
                             f"{ids[bad][:10].tolist()} ({int(bad.sum())} out of range)")
        return self._codes[ids.astype(np.intp)].astype("<u4").tobytes().decode("utf-32-le")

    def state_dict(self) -> dict:
        """``{"chars": str}``: everything needed to rebuild the vocabulary; storable by ``rnnbp.save``."""
        return {"chars": self._chars}

    @classmethod
    def from_state_dict(cls, state: dict) -> "CharVocab":
        """The vocabulary saved by :meth:`state_dict`.

        Raises:
            ValueError: ``state`` has no string entry ``"chars"``, or its characters are
                not sorted and unique (so ids would differ from the saved model's).
        """
        chars = state.get("chars") if isinstance(state, dict) else None
        if not isinstance(chars, str):
            raise ValueError(f"CharVocab.from_state_dict: expected a dict with a str 'chars', got {state!r:.80}")
        vocab = cls(chars)
        if vocab.chars != chars:
            raise ValueError("CharVocab.from_state_dict: 'chars' is not sorted and unique; "
                             "ids would not match the ones the vocabulary was saved with")
        return vocab


# ------------------------------------------------------------------ corpus
def load_tiny_shakespeare(root: str | os.PathLike | None = None, *, verify: str = "sha256",
                          downloader: Callable | None = None, progressbar: bool = True) -> str:
    """Tiny-shakespeare (Karpathy's char-rnn corpus): 1,115,394 characters, 65 distinct.

    The file is ``<root>/tinyshakespeare/input.txt``, downloaded from
    :data:`TINY_SHAKESPEARE_URL` when missing and always checked against
    :data:`TINY_SHAKESPEARE_SHA256`; see :func:`rnnbp.data.download.fetch` and the card
    ``datasets/tinyshakespeare.md``.

    Args:
        root, verify, downloader, progressbar: as for :func:`rnnbp.data.download.fetch`.

    Returns:
        str: the whole text, exactly as stored (no newline translation).
    """
    folder = fetch("tinyshakespeare", {"input.txt": TINY_SHAKESPEARE_SHA256}, TINY_SHAKESPEARE_URL,
                   root=root, verify=verify, downloader=downloader, progressbar=progressbar)
    return (folder / "input.txt").read_bytes().decode("utf-8")


def split_text(text, val_fraction: float = 0.1):
    """Split a sequence in two at ``int(len * (1 - val_fraction))``: train first, validation last.

    A contiguous cut (no shuffling) keeps each part a readable stream and is the
    convention for tiny-shakespeare (first 90 % train, last 10 % validation, as in
    nanoGPT's ``shakespeare_char``).

    Args:
        text : str or np.ndarray [shape=(N,)]. Text or its ids.
        val_fraction : float in (0, 1).

    Returns:
        (train, val), of the input's type.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"split_text: val_fraction must be in (0, 1), got {val_fraction}")
    n_train = int(len(text) * (1.0 - val_fraction))
    return text[:n_train], text[n_train:]


@dataclass
class TextCorpus:
    """A character corpus as ids: the vocabulary of the whole text and its train/validation split.

    Attributes:
        vocab : CharVocab of every character in the text (so validation never meets
            an unknown character).
        train : np.ndarray [shape=(N_train,), dtype=int64].
        val : np.ndarray [shape=(N_val,), dtype=int64].
    """

    vocab: CharVocab
    train: np.ndarray
    val: np.ndarray

    @classmethod
    def from_text(cls, text: str, val_fraction: float = 0.1) -> "TextCorpus":
        """Encode ``text`` and split it with :func:`split_text`."""
        vocab = CharVocab.from_text(text)
        train, val = split_text(vocab.encode(text), val_fraction)
        return cls(vocab, train, val)


# ----------------------------------------------------------------- streams
def stream_batches(ids: np.ndarray, batch_size: int) -> np.ndarray:
    """Cut a sequence into ``batch_size`` contiguous rows, laid side by side time-major.

    Column ``b`` is ``ids[b*T : (b+1)*T]`` with ``T = len(ids) // batch_size``; the last
    ``len(ids) % batch_size`` items are dropped. This is PyTorch ``word_language_model``'s
    ``batchify``: the state at the end of one chunk of a column is the right start for
    its next chunk.

    Args:
        ids : np.ndarray [shape=(N, ...)]. The sequence (extra axes are carried along).
        batch_size : int, 0 < batch_size <= N.

    Returns:
        np.ndarray [shape=(T, batch_size, ...)], C-contiguous (a time step is one block).
    """
    ids = np.asarray(ids)
    if ids.ndim < 1:
        raise ValueError("stream_batches: expected a sequence of at least one axis, got a scalar")
    if not 0 < batch_size <= len(ids):
        raise ValueError(f"stream_batches: batch_size must be in [1, {len(ids)}] for a sequence of "
                         f"length {len(ids)}, got {batch_size}")
    steps = len(ids) // batch_size
    rows = ids[:steps * batch_size].reshape(batch_size, steps, *ids.shape[1:])  # (B, T, ...)
    return np.ascontiguousarray(rows.swapaxes(0, 1))  # (T, B, ...)


def stream_pairs(stream: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-step targets of a stream: ``(stream[:-1], stream[1:])``.

    Args:
        stream : np.ndarray [shape=(T, B, ...)], T >= 2.

    Returns:
        (inputs, targets), each [shape=(T - 1, B, ...)] (views).
    """
    if len(stream) < 2:
        raise ValueError(f"stream_pairs: need at least 2 time steps, got {len(stream)}")
    return stream[:-1], stream[1:]


def stream_chunks(stream: np.ndarray, k: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Walk a stream in chunks of ``k`` steps: ``(inputs, targets)`` with targets one step ahead.

    Chunk ``i`` is ``(stream[i*k : i*k+n], stream[i*k+1 : i*k+1+n])`` with
    ``n = min(k, T - 1 - i*k)``, so the last chunk may be shorter (PyTorch
    ``word_language_model``'s ``get_batch``). Together the chunks are
    :func:`stream_pairs` of the stream, in order.

    Args:
        stream : np.ndarray [shape=(T, B, ...)], T >= 2.
        k : int > 0. Steps per chunk.

    Yields:
        (inputs, targets), each [shape=(n, B, ...)], 1 <= n <= k (views).
    """
    check_int("stream_chunks", "k", k)
    inputs, targets = stream_pairs(stream)  # checked here, not at the first next()
    return ((inputs[s:s + k], targets[s:s + k]) for s in range(0, len(inputs), k))
