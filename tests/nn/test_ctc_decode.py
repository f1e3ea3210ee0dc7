"""CTC decoding: greedy best path, prefix beam search against brute force and against the loss."""
import itertools

import numpy as np
import pytest

from rnnbp import Tensor
from rnnbp.nn.ctc import ctc_loss, greedy_decode, prefix_beam_search


def _log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _collapse(path, blank):
    out, prev = [], None
    for k in path:
        if k != prev and k != blank:
            out.append(k)
        prev = k
    return tuple(out)


def _labelling_log_probs(lp, blank):
    """log p(l | x) of every labelling l, by summing over all C^T paths of lp (T, C)."""
    totals = {}
    for path in itertools.product(range(lp.shape[1]), repeat=lp.shape[0]):
        label = _collapse(path, blank)
        totals[label] = np.logaddexp(totals.get(label, -np.inf), lp[np.arange(lp.shape[0]), path].sum())
    return totals


def _one_hot_path(path, n_classes, p=0.9):
    """Log-probs (T, C) whose argmax follows ``path`` with probability p, the rest shared evenly."""
    probs = np.full((len(path), n_classes), (1 - p) / (n_classes - 1))
    probs[np.arange(len(path)), path] = p
    return np.log(probs)


# ------------------------------------------------------------------ greedy
def test_greedy_merges_repeats_then_drops_blanks():
    lp = _one_hot_path([1, 1, 0, 1, 2, 2, 0, 0], 3)
    labels, score = greedy_decode(lp)
    assert labels == [1, 1, 2]
    np.testing.assert_allclose(score, 8 * np.log(0.9))
    assert greedy_decode(lp, blank=2)[0] == [1, 0, 1, 0]  # with 2 as the blank, 0 is a label


def test_greedy_batch_with_lengths_and_tensor_input():
    paths = [[1, 0, 2, 2, 3], [3, 3, 3, 0, 3], [0, 0, 0, 0, 0]]
    lp = np.stack([_one_hot_path(p, 4) for p in paths], axis=1).astype(np.float32)  # (T, N, C)
    labels, scores = greedy_decode(Tensor(lp), input_lengths=[5, 3, 5])
    assert labels == [[1, 2, 3], [3], []]
    assert scores.dtype == np.float32 and scores.shape == (3,)
    np.testing.assert_allclose(scores, np.log(np.float32(0.9)) * np.array([5, 3, 5]), rtol=1e-6)


# ------------------------------------------------------------------ beam search
def test_beam_search_finds_the_labelling_greedy_misses():
    # Each step: blank 0.6, label 0.4. The best path is (blank, blank) -> "" with 0.36, but the
    # labelling (1,) has paths (1,1), (1,-), (-,1): 0.16 + 0.24 + 0.24 = 0.64.
    lp = np.log(np.array([[0.6, 0.4], [0.6, 0.4]]))
    assert greedy_decode(lp)[0] == []
    (labels, score), = prefix_beam_search(lp, beam_width=4)
    assert labels == [1]
    np.testing.assert_allclose(score, np.log(0.64))


@pytest.mark.parametrize("seed,blank", [(0, 0), (1, 2), (2, 1), (3, 0)])
def test_beam_search_matches_brute_force_over_all_labellings(seed, blank):
    lp = _log_softmax(0.8 * np.random.default_rng(seed).standard_normal((5, 3)))
    totals = _labelling_log_probs(lp, blank)
    best = sorted(totals.items(), key=lambda kv: -kv[1])
    # A beam of 64 keeps every prefix (at most 1 + 2 + ... + 2^5 = 63 of them): scores are exact.
    hyps = prefix_beam_search(lp, beam_width=64, blank=blank, top_k=5)
    assert [tuple(h[0]) for h in hyps] == [label for label, _ in best[:5]]
    np.testing.assert_allclose([h[1] for h in hyps], [v for _, v in best[:5]], rtol=1e-12)
    # ... and equal -ctc_loss of the same labellings.
    for labels, score in hyps:
        loss = ctc_loss(Tensor(lp), np.array(labels, dtype=np.int64), [5], [len(labels)], blank=blank,
                        reduction="sum", zero_infinity=True)
        np.testing.assert_allclose(-loss.item(), score, rtol=1e-12)
    # A narrow beam still finds the best labelling on these small cases.
    assert tuple(prefix_beam_search(lp, beam_width=3, blank=blank)[0][0]) == best[0][0]


@pytest.mark.parametrize("seed", range(4))
def test_beam_width_one_equals_greedy_on_peaked_outputs(seed):
    # When every step's most probable class has probability >= 0.8, a beam of one keeps the
    # greedy path's prefix at every step (the path's last symbol, blank or label, then holds at
    # least 3/4 of the prefix's probability, which decides every comparison the same way).
    rng = np.random.default_rng(seed)
    t_max, n, c = 12, 5, 4
    argmax = rng.integers(0, 3, (t_max, n))  # classes 0..2 only: many repeats and blanks
    probs = rng.dirichlet(np.ones(c - 1), size=(t_max, n)) * 0.2 * rng.random((t_max, n, 1))
    full = np.zeros((t_max, n, c))
    for t, b in np.ndindex(t_max, n):
        others = [k for k in range(c) if k != argmax[t, b]]
        full[t, b, others] = probs[t, b]
        full[t, b, argmax[t, b]] = 1 - probs[t, b].sum()
    assert full.max(axis=2).min() >= 0.8
    lengths = rng.integers(1, t_max + 1, n)
    lp = np.log(full)
    labels, _ = greedy_decode(lp, lengths)
    beams = prefix_beam_search(lp, lengths, beam_width=1)
    assert [b[0][0] for b in beams] == labels


def test_beam_search_batch_lengths_and_unbatched():
    rng = np.random.default_rng(5)
    lp = _log_softmax(rng.standard_normal((6, 3, 4)))
    batch = prefix_beam_search(Tensor(lp), input_lengths=[6, 2, 0], beam_width=5, top_k=2)
    assert len(batch) == 3 and all(len(h) <= 2 for h in batch)
    assert batch[0] == prefix_beam_search(lp[:, 0], beam_width=5, top_k=2)
    assert batch[1] == prefix_beam_search(lp[:2, 1], beam_width=5, top_k=2)
    assert batch[2] == [([], 0.0)]  # no steps: the empty labelling with probability 1
    assert batch[0][0][1] >= batch[0][1][1]


def test_prune_skips_unlikely_labels():
    rng = np.random.default_rng(6)
    probs = rng.dirichlet(np.ones(3), size=3) * 0.98
    lp = np.log(np.concatenate([probs, np.full((3, 1), 0.02)], axis=1))  # class 3: 0.02 at every step
    # T = 3 and 3 labels: at most 1 + 3 + 9 + 27 = 40 prefixes, so a beam of 64 keeps them all.
    full = prefix_beam_search(lp, beam_width=64, top_k=64)
    assert prefix_beam_search(lp, beam_width=64, top_k=64, prune=-np.inf) == full
    assert any(3 in labels for labels, _ in full)
    pruned = prefix_beam_search(lp, beam_width=64, top_k=64, prune=np.log(0.05))
    assert pruned and not any(3 in labels for labels, _ in pruned)
    assert [h for h in full if 3 not in h[0]] == pruned  # the rest untouched: same scores, same order


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(beam_width=0), "prefix_beam_search: beam_width must be a positive integer, got 0"),
    (dict(beam_width=2, top_k=3), r"top_k must be an integer in \[1, 2\], got 3"),
    (dict(blank=4), r"blank must be a class index in \[0, C\) = \[0, 4\)"),
    (dict(prune=float("nan")), "prune must be a number \\(not NaN\\)"),
    (dict(input_lengths=[7, 1]), "input_lengths must be at most 6"),
    (dict(input_lengths=[6]), r"input_lengths must have one length per batch element, shape \(2,\)"),
])
def test_decode_errors(kwargs, pattern):
    lp = _log_softmax(np.random.default_rng(7).standard_normal((6, 2, 4)))
    with pytest.raises(ValueError, match=pattern):
        prefix_beam_search(lp, **kwargs)
    if set(kwargs) <= {"blank", "input_lengths"}:
        with pytest.raises(ValueError, match=pattern.replace("prefix_beam_search", "greedy_decode")):
            greedy_decode(lp, **kwargs)
    with pytest.raises(TypeError, match="greedy_decode: log_probs must be a floating-point"):
        greedy_decode(np.zeros((3, 2, 4), dtype=np.int64))
