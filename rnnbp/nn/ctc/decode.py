"""Decoding CTC outputs into label sequences: greedy best path and prefix beam search.

A labelling l is read off a path (one class per step) by merging repeated classes and then
dropping blanks: (a, a, -, a, b, b) -> (a, a, b). Its probability p(l | x) sums over every path
that reads as l (what :func:`rnnbp.nn.functional.ctc_loss` computes as -log p).

* :func:`greedy_decode` takes the most probable *path* (argmax per step) and reads it off. Fast,
  and exact for the best path, but the best path need not read as the best labelling.
* :func:`prefix_beam_search` searches labellings directly: it keeps the ``beam_width`` most
  probable prefixes, each with the log-probability of the paths that read as it and end in a
  blank (p_b) or in its last label (p_nb), merging every path into its prefix with log-sum-exp.
  With a beam wide enough to keep every prefix, a hypothesis' score is exactly log p(l | x).

Both take ``log_probs`` (T, N, C) or unbatched (T, C), as a Tensor or an array, and optional
``input_lengths`` (N,) (all T by default). They return plain Python lists: decoding ends in
strings, and label sequences of different lengths do not fit one array. Decoding is not
differentiable and runs outside autograd; the beam search loops over batch elements in Python.
"""
from __future__ import annotations

import math

import numpy as np

from ...validation import check_int, check_number
from .inputs import check_blank, check_lengths, check_log_probs

_NEG_INF = -math.inf


def _prepare(op: str, log_probs, input_lengths, blank):
    """(T, N, C) array, lengths (N,), blank, unbatched flag."""
    log_probs, unbatched = check_log_probs(op, log_probs)
    lp = log_probs._data
    if unbatched:
        lp = lp[:, None, :]
    t_max, batch, n_classes = lp.shape
    blank = check_blank(op, blank, n_classes)
    if input_lengths is None:
        lengths = np.full(batch, t_max, dtype=np.int64)
    else:
        lengths = check_lengths(op, "input_lengths", input_lengths, batch, unbatched, t_max,
                                f"the number of steps T of log_probs of shape {log_probs.shape}")
    return lp, lengths, blank, unbatched


def greedy_decode(log_probs, input_lengths=None, blank: int = 0):
    """Best-path decoding: the argmax class per step, repeats merged, blanks dropped.

    Args:
        log_probs : Tensor or np.ndarray [shape=(T, N, C) or (T, C), float32 or float64]. Log-probabilities.
        input_lengths : optional ints [shape=(N,)], each in [0, T]; steps past them are ignored.
        blank : int in [0, C). The blank class.

    Returns:
        labels : list of N lists of ints (one list when unbatched).
        scores : np.ndarray [shape=(N,), log_probs' dtype] (a float when unbatched): the
            log-probability of the best path, sum_t max_k log_probs[t, n, k] over t < T_n.
    """
    lp, lengths, blank, unbatched = _prepare("greedy_decode", log_probs, input_lengths, blank)
    t_max = lp.shape[0]
    best = lp.argmax(axis=2)  # (T, N)
    active = np.arange(t_max)[:, None] < lengths[None, :]  # (T, N)
    scores = np.where(active, np.take_along_axis(lp, best[..., None], axis=2)[..., 0], lp.dtype.type(0)).sum(
        axis=0, dtype=lp.dtype)
    new = np.ones_like(best, dtype=bool)
    new[1:] = best[1:] != best[:-1]  # a class repeated on consecutive steps is one label
    keep = new & (best != blank) & active
    labels = [best[keep[:, n], n].tolist() for n in range(lp.shape[1])]
    if unbatched:
        return labels[0], float(scores[0])
    return labels, scores


def _logaddexp(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    if b == _NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


def _beam_search_one(lp: np.ndarray, blank: int, beam_width: int, prune, top_k: int):
    """Prefix beam search over one sequence lp (T_n, C) of Python floats; top_k (labels, score)."""
    n_classes = lp.shape[1]
    beams = {(): (0.0, _NEG_INF)}  # prefix -> (log p_b, log p_nb)
    for row in lp.tolist():
        blank_lp = row[blank]
        labels = [k for k in range(n_classes) if k != blank and (prune is None or row[k] >= prune)]
        nxt: dict = {}
        for prefix, (p_b, p_nb) in beams.items():
            p_total = _logaddexp(p_b, p_nb)
            # Stay on the prefix: a blank after anything, or its last label once more (merged).
            nb_b, nb_nb = nxt.get(prefix, (_NEG_INF, _NEG_INF))
            nb_b = _logaddexp(nb_b, p_total + blank_lp)
            last = prefix[-1] if prefix else None
            if last is not None:
                nb_nb = _logaddexp(nb_nb, p_nb + row[last])
            nxt[prefix] = (nb_b, nb_nb)
            # Extend it by a label; the same label as the last one only after a blank.
            for k in labels:
                extended = prefix + (k,)
                e_b, e_nb = nxt.get(extended, (_NEG_INF, _NEG_INF))
                from_ = p_b if k == last else p_total
                nxt[extended] = (e_b, _logaddexp(e_nb, from_ + row[k]))
        ranked = sorted(nxt.items(), key=lambda item: -_logaddexp(*item[1]))
        beams = dict(ranked[:beam_width])
    ranked = sorted(((list(prefix), _logaddexp(*p)) for prefix, p in beams.items()), key=lambda h: -h[1])
    return ranked[:top_k]


def prefix_beam_search(log_probs, input_lengths=None, beam_width: int = 10, blank: int = 0,
                       prune: float | None = None, top_k: int = 1):
    """Prefix beam search: the most probable labellings, each scored over all its alignments.

    At every step each kept prefix may stay (a blank, or its last label again) or grow by a label;
    paths reaching the same prefix are merged (log-sum-exp of their probabilities, kept apart by
    whether they end in a blank, since only then may the last label be repeated as a new label);
    the ``beam_width`` prefixes of highest total probability survive. Ties keep the order in which
    the prefixes were reached.

    Args:
        log_probs : Tensor or np.ndarray [shape=(T, N, C) or (T, C), float32 or float64]. Log-probabilities.
        input_lengths : optional ints [shape=(N,)], each in [0, T]; steps past them are ignored.
        beam_width : int > 0. Prefixes kept after each step.
        blank : int in [0, C). The blank class.
        prune : float or None. At each step, labels with log-probability below ``prune`` extend
            no prefix (the blank, and a prefix's stay on its own last label, are never pruned).
            Speeds up large vocabularies; None keeps every label.
        top_k : int in [1, beam_width]. Hypotheses returned per element.

    Returns:
        For each batch element, a list of up to ``top_k`` hypotheses ``(labels, score)``, best
        first: ``labels`` a list of ints, ``score`` the log-probability of the paths of that
        labelling that stayed in the beam (exactly log p(labels | x) when no prefix of it was
        ever dropped). Unbatched input gives the one element's list.
    """
    op = "prefix_beam_search"
    lp, lengths, blank, unbatched = _prepare(op, log_probs, input_lengths, blank)
    beam_width = check_int(op, "beam_width", beam_width)
    top_k = check_int(op, "top_k", top_k, 1, beam_width)
    prune = check_number(op, "prune", prune, allow_none=True, finite=False)
    lp64 = lp.astype(np.float64, copy=False)  # scores accumulate over T steps: keep them in float64
    results = [_beam_search_one(lp64[: lengths[n], n], blank, beam_width, prune, top_k)
               for n in range(lp.shape[1])]
    return results[0] if unbatched else results

