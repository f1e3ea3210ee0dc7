"""Padding and packing of variable-length sequences (rnnbp.nn.utils.rnn), and RNNs on packed input.

Expected arrays are written out by hand for small examples; gradients are
checked in float64 against central differences.
"""
from __future__ import annotations

import numpy as np
import pytest

from rnnbp import nn
from rnnbp.autograd import Tensor, gradcheck
from rnnbp.nn.utils.rnn import (
    PackedSequence, pack_padded_sequence, pack_sequence, pad_packed_sequence, pad_sequence,
)


def _leaf(array):
    return Tensor(np.array(array, dtype=np.float64), requires_grad=True)


def _coded(T, B, F=2):
    """x[t, b] = [10 b + t, -(10 b + t)]: every entry names its position."""
    code = 10.0 * np.arange(B)[None, :] + np.arange(T)[:, None]  # (T, B)
    return np.stack([code, -code], axis=-1)[..., :F]


# ---------------------------------------------------------------- pad_sequence
SEQS = [[[1, 2], [3, 4], [5, 6]], [[7, 8]], [[9, 10], [11, 12]]]  # lengths 3, 1, 2


def test_pad_sequence_time_major():
    out = pad_sequence([Tensor(np.array(s, dtype=np.float64)) for s in SEQS], padding_value=-1.0)
    expected = np.array([
        [[1, 2], [7, 8], [9, 10]],
        [[3, 4], [-1, -1], [11, 12]],
        [[5, 6], [-1, -1], [-1, -1]],
    ], dtype=np.float64)
    np.testing.assert_array_equal(out.numpy(), expected)


def test_pad_sequence_batch_first_default_padding():
    out = pad_sequence([Tensor(np.array(s, dtype=np.float64)) for s in SEQS], batch_first=True)
    expected = np.array([
        [[1, 2], [3, 4], [5, 6]],
        [[7, 8], [0, 0], [0, 0]],
        [[9, 10], [11, 12], [0, 0]],
    ], dtype=np.float64)
    np.testing.assert_array_equal(out.numpy(), expected)


def test_pad_sequence_left_padding():
    out = pad_sequence([Tensor(np.array(s, dtype=np.float64)) for s in SEQS], batch_first=True, padding_side="left")
    np.testing.assert_array_equal(out.numpy()[1], [[0, 0], [0, 0], [7, 8]])
    np.testing.assert_array_equal(out.numpy()[2], [[0, 0], [9, 10], [11, 12]])
    with pytest.raises(ValueError, match="padding_side must be 'right' or 'left'"):
        pad_sequence([Tensor(np.ones(2))], padding_side="top")


def test_pad_sequence_keeps_float32():
    out = pad_sequence([Tensor(np.ones((2, 3), np.float32)), Tensor(np.ones((1, 3), np.float32))], padding_value=2.5)
    assert out.dtype == np.float32 and out.shape == (2, 2, 3)
    assert out.numpy()[1, 1, 0] == np.float32(2.5)


def test_pad_sequence_errors():
    with pytest.raises(ValueError, match="non-empty"):
        pad_sequence([])
    with pytest.raises(ValueError, match="trailing"):
        pad_sequence([Tensor(np.zeros((2, 3))), Tensor(np.zeros((2, 4)))])


def test_pad_sequence_gradcheck():
    rng = np.random.default_rng(0)
    seqs = [_leaf(rng.standard_normal((n, 2))) for n in (3, 1, 2)]
    assert gradcheck(lambda *s: pad_sequence(list(s), padding_value=0.5), seqs)
    assert gradcheck(lambda *s: pad_sequence(list(s), batch_first=True), seqs)


# -------------------------------------------------- packed layout, by hand
def test_pack_unsorted_layout_by_hand():
    """lengths [1, 3, 2]: sorted order is sequences 1, 2, 0."""
    packed = pack_padded_sequence(Tensor(_coded(3, 3)), np.array([1, 3, 2]), enforce_sorted=False)
    np.testing.assert_array_equal(packed.batch_sizes, [3, 2, 1])
    np.testing.assert_array_equal(packed.sorted_indices, [1, 2, 0])
    np.testing.assert_array_equal(packed.unsorted_indices, [2, 0, 1])
    # rows: (t0, b1) (t0, b2) (t0, b0) (t1, b1) (t1, b2) (t2, b1)
    np.testing.assert_array_equal(packed.data.numpy()[:, 0], [10, 20, 0, 11, 21, 12])
    np.testing.assert_array_equal(packed.data.numpy()[:, 1], [-10, -20, 0, -11, -21, -12])
    assert packed.batch_sizes.dtype == np.int64


def test_pack_sorted_layout_by_hand():
    packed = pack_padded_sequence(Tensor(_coded(3, 4)), [3, 2, 2, 1])
    np.testing.assert_array_equal(packed.batch_sizes, [4, 3, 1])
    assert packed.sorted_indices is None and packed.unsorted_indices is None
    np.testing.assert_array_equal(packed.data.numpy()[:, 0], [0, 10, 20, 30, 1, 11, 21, 2])


def test_pack_sorted_input_with_enforce_sorted_false_records_identity():
    packed = pack_padded_sequence(Tensor(_coded(3, 3)), [3, 2, 1], enforce_sorted=False)
    np.testing.assert_array_equal(packed.sorted_indices, [0, 1, 2])
    np.testing.assert_array_equal(packed.unsorted_indices, [0, 1, 2])
    np.testing.assert_array_equal(packed.data.numpy()[:, 0], [0, 10, 20, 1, 11, 2])


def test_pack_batch_first_layout():
    x = _coded(3, 3).transpose(1, 0, 2)  # (B, T, F)
    packed = pack_padded_sequence(Tensor(x), [1, 3, 2], batch_first=True, enforce_sorted=False)
    np.testing.assert_array_equal(packed.data.numpy()[:, 0], [10, 20, 0, 11, 21, 12])


def test_pad_packed_by_hand():
    data = Tensor(np.array([[10.0], [20.0], [0.0], [11.0], [21.0], [12.0]]))
    seq = PackedSequence(data, np.array([3, 2, 1]), np.array([1, 2, 0]), np.array([2, 0, 1]))
    padded, lengths = pad_packed_sequence(seq, padding_value=-1.0)
    expected = np.array([[0, 10, 20], [-1, 11, 21], [-1, 12, -1]], dtype=np.float64)[..., None]
    np.testing.assert_array_equal(padded.numpy(), expected)
    np.testing.assert_array_equal(lengths, [1, 3, 2])
    padded_bf, _ = pad_packed_sequence(seq, batch_first=True, total_length=4)
    expected_bf = np.array([[0, 0, 0, 0], [10, 11, 12, 0], [20, 21, 0, 0]], dtype=np.float64)[..., None]
    np.testing.assert_array_equal(padded_bf.numpy(), expected_bf)


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths,enforce_sorted", [([6, 4, 3, 1], True), ([3, 6, 1, 4], False),
                                                    ([2, 5, 2, 4], False)], ids=["sorted", "unsorted", "ties"])
def test_pack_pad_round_trip_exact(lengths, enforce_sorted, batch_first):
    rng = np.random.default_rng(1)
    T, B = 7, 4  # T above the longest length: padding comes back only to max(lengths) by default
    x = rng.standard_normal((B, T, 3) if batch_first else (T, B, 3))
    packed = pack_padded_sequence(Tensor(x), np.array(lengths), batch_first=batch_first,
                                  enforce_sorted=enforce_sorted)
    assert packed.data.numpy().shape == (sum(lengths), 3)
    assert len(packed.batch_sizes) == max(lengths)
    padded, out_lengths = pad_packed_sequence(packed, batch_first=batch_first, padding_value=-7.0)
    np.testing.assert_array_equal(out_lengths, lengths)
    tm_in = x.transpose(1, 0, 2) if batch_first else x
    tm_out = padded.numpy().transpose(1, 0, 2) if batch_first else padded.numpy()
    assert tm_out.shape == (max(lengths), B, 3)
    for b, n in enumerate(lengths):
        np.testing.assert_array_equal(tm_out[:n, b], tm_in[:n, b])
        assert np.all(tm_out[n:, b] == -7.0)
    full, _ = pad_packed_sequence(packed, batch_first=batch_first, total_length=9)
    tm_full = full.numpy().transpose(1, 0, 2) if batch_first else full.numpy()
    assert tm_full.shape == (9, B, 3)
    np.testing.assert_array_equal(tm_full[:max(lengths)], np.where(tm_out == -7.0, 0.0, tm_out))
    assert np.all(tm_full[max(lengths):] == 0.0)


def test_pack_sorted_indices_invert_each_other():
    lengths = np.array([2, 7, 5, 1, 3])
    packed = pack_padded_sequence(Tensor(np.zeros((7, 5, 1))), lengths, enforce_sorted=False)
    np.testing.assert_array_equal(packed.sorted_indices[packed.unsorted_indices], np.arange(5))
    np.testing.assert_array_equal(lengths[packed.sorted_indices], [7, 5, 3, 2, 1])
    np.testing.assert_array_equal(packed.batch_sizes, [5, 4, 3, 2, 2, 1, 1])


def test_index_fields_and_lengths_are_int64_tensors_as_in_torch():
    """PyTorch gives batch_sizes, sorted/unsorted_indices and pad_packed_sequence's lengths as int64
    Tensors: programs compare them with torch.equal, index with them and call .tolist()."""
    import rnnbp

    packed = pack_padded_sequence(Tensor(_coded(3, 3)), Tensor(np.array([1, 3, 2])), enforce_sorted=False)
    for field in (packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices):
        assert isinstance(field, Tensor) and field.dtype == np.int64 and not field.requires_grad
    assert packed.batch_sizes.tolist() == [3, 2, 1] and packed.sorted_indices.tolist() == [1, 2, 0]
    _, lengths = pad_packed_sequence(packed)
    assert isinstance(lengths, Tensor) and lengths.dtype == np.int64
    assert rnnbp.equal(lengths, rnnbp.tensor([1, 3, 2])) and not rnnbp.equal(lengths, rnnbp.tensor([1, 2, 3]))
    lstm = nn.LSTM(2, 3).double()
    out, _ = lstm(packed)
    assert out.sorted_indices is packed.sorted_indices and isinstance(out.batch_sizes, Tensor)
    padded, out_lengths = pad_packed_sequence(out)
    last = padded[out_lengths - 1, rnnbp.arange(3)]  # each sequence's last output, as scripts take it
    assert last.shape == (3, 3)
    np.testing.assert_array_equal(last.numpy(), padded.numpy()[[0, 2, 1], [0, 1, 2]])


def test_index_fields_match_torch():
    torch = pytest.importorskip("torch")
    x = _coded(4, 3)
    lengths = [2, 4, 1]
    ours = pack_padded_sequence(Tensor(x), lengths, enforce_sorted=False)
    ref = torch.nn.utils.rnn.pack_padded_sequence(torch.tensor(x), torch.tensor(lengths), enforce_sorted=False)
    for name in ("batch_sizes", "sorted_indices", "unsorted_indices"):
        assert getattr(ours, name).tolist() == getattr(ref, name).tolist(), name
    assert pad_packed_sequence(ours)[1].tolist() == torch.nn.utils.rnn.pad_packed_sequence(ref)[1].tolist()


def test_equal_needs_tensors():
    import rnnbp

    with pytest.raises(TypeError, match=r"equal\(\): argument 'other' must be a Tensor, not ndarray"):
        rnnbp.equal(rnnbp.tensor([1, 2]), np.array([1, 2]))
    with pytest.raises(TypeError, match=r"equal\(\): argument 'input' must be a Tensor, not list"):
        rnnbp.equal([1, 2], rnnbp.tensor([1, 2]))


# ---------------------------------------------------------------------- errors
def test_pack_errors():
    x = Tensor(np.zeros((4, 3, 2)))
    with pytest.raises(ValueError, match="enforce_sorted"):
        pack_padded_sequence(x, [2, 4, 1])
    with pytest.raises(ValueError, match="lengths"):
        pack_padded_sequence(x, [4, 0, 1], enforce_sorted=False)
    with pytest.raises(ValueError, match="lengths"):
        pack_padded_sequence(x, [5, 2, 1])
    with pytest.raises(ValueError, match="3 sequences"):
        pack_padded_sequence(x, [4, 2])
    with pytest.raises(ValueError, match="integers"):
        pack_padded_sequence(x, [4.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="1-D"):
        pack_padded_sequence(x, [[4, 2, 1]])


def test_pad_packed_total_length_too_short():
    packed = pack_padded_sequence(Tensor(np.zeros((4, 2, 1))), [4, 2])
    with pytest.raises(ValueError, match="total_length"):
        pad_packed_sequence(packed, total_length=3)


# ------------------------------------------------------------------- gradients
def test_pack_gradcheck():
    rng = np.random.default_rng(2)
    x = _leaf(rng.standard_normal((5, 4, 2)))
    assert gradcheck(lambda x: pack_padded_sequence(x, [3, 5, 1, 4], enforce_sorted=False).data, [x])
    xb = _leaf(rng.standard_normal((4, 5, 2)))  # (B, T, F)
    assert gradcheck(lambda x: pack_padded_sequence(x, [4, 2, 2, 1], batch_first=True).data, [xb])


def test_pad_packed_gradcheck():
    rng = np.random.default_rng(3)
    packed = pack_padded_sequence(Tensor(np.zeros((5, 4, 2))), [3, 5, 1, 4], enforce_sorted=False)
    data = _leaf(rng.standard_normal(packed.data.numpy().shape))

    def fn(d):
        seq = PackedSequence(d, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
        return pad_packed_sequence(seq, batch_first=True, padding_value=2.0, total_length=6)[0]

    assert gradcheck(fn, [data])


def test_pack_then_pad_gradient_is_masked_projection():
    rng = np.random.default_rng(4)
    lengths = np.array([3, 5, 1, 4])
    x = _leaf(rng.standard_normal((5, 4, 2)))
    v = rng.standard_normal((5, 4, 2))
    padded, _ = pad_packed_sequence(pack_padded_sequence(x, lengths, enforce_sorted=False))
    (padded * Tensor(v)).sum().backward()
    mask = (np.arange(5)[:, None] < lengths[None, :])[..., None]
    np.testing.assert_array_equal(x.grad.numpy(), np.where(mask, v, 0.0))
    assert gradcheck(lambda x: pad_packed_sequence(pack_padded_sequence(x, lengths, enforce_sorted=False))[0], [x])


# ---------------------------------------------------------------- pack_sequence
def test_pack_sequence():
    seqs = [Tensor(np.array(s, dtype=np.float64)) for s in SEQS]  # lengths 3, 1, 2
    packed = pack_sequence(seqs, enforce_sorted=False)
    np.testing.assert_array_equal(packed.batch_sizes, [3, 2, 1])
    np.testing.assert_array_equal(packed.sorted_indices, [0, 2, 1])
    np.testing.assert_array_equal(packed.unsorted_indices, [0, 2, 1])
    np.testing.assert_array_equal(packed.data.numpy(), [[1, 2], [9, 10], [7, 8], [3, 4], [11, 12], [5, 6]])
    with pytest.raises(ValueError, match="enforce_sorted"):
        pack_sequence(seqs)
    ordered = pack_sequence([seqs[0], seqs[2], seqs[1]])
    assert ordered.sorted_indices is None
    np.testing.assert_array_equal(ordered.data.numpy(), packed.data.numpy())
    padded, lengths = pad_packed_sequence(packed, batch_first=True)
    np.testing.assert_array_equal(lengths, [3, 1, 2])
    np.testing.assert_array_equal(padded.numpy(), pad_sequence(seqs, batch_first=True).data)


def test_pack_sequence_gradcheck():
    rng = np.random.default_rng(5)
    seqs = [_leaf(rng.standard_normal((n, 2))) for n in (2, 4, 1)]
    assert gradcheck(lambda *s: pack_sequence(list(s), enforce_sorted=False).data, seqs)


# ---------------------------------------------------------- RNNs on packed input
def _lstm(fused=True, batch_first=False, seed=0):
    return nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=batch_first, fused=fused,
                   generator=np.random.default_rng(seed)).double()


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
@pytest.mark.parametrize("lengths,enforce_sorted", [([2, 5, 3, 4], False), ([5, 4, 2, 2], True)],
                         ids=["unsorted", "sorted"])
def test_lstm_on_packed_equals_lengths_argument(lengths, enforce_sorted, fused):
    rng = np.random.default_rng(6)
    T, B = 6, 4
    lengths = np.array(lengths)
    x_np = rng.standard_normal((T, B, 3))
    h0_np, c0_np = rng.standard_normal((4, B, 4)), rng.standard_normal((4, B, 4))
    v = rng.standard_normal((T, B, 8))

    lstm = _lstm(fused)
    x, h0, c0 = _leaf(x_np), _leaf(h0_np), _leaf(c0_np)
    packed_in = pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted)
    packed_out, (h, c) = lstm(packed_in, (h0, c0))
    assert isinstance(packed_out, PackedSequence)
    np.testing.assert_array_equal(packed_out.batch_sizes, packed_in.batch_sizes)
    for got, want in ((packed_out.sorted_indices, packed_in.sorted_indices),
                      (packed_out.unsorted_indices, packed_in.unsorted_indices)):
        assert (got is None) == (want is None)
        if want is not None:
            np.testing.assert_array_equal(got, want)
    assert packed_out.data.numpy().shape == (lengths.sum(), 8)
    padded, out_lengths = pad_packed_sequence(packed_out, total_length=T)
    np.testing.assert_array_equal(out_lengths, lengths)
    ((padded * Tensor(v)).sum() + h.sum() + (c * c).sum()).backward()

    ref = _lstm(fused)
    rx, rh0, rc0 = _leaf(x_np), _leaf(h0_np), _leaf(c0_np)
    out, (rh, rc) = ref(rx, (rh0, rc0), lengths=lengths)
    ((out * Tensor(v)).sum() + rh.sum() + (rc * rc).sum()).backward()

    np.testing.assert_allclose(padded.numpy(), out.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(h.numpy(), rh.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(c.numpy(), rc.numpy(), rtol=0, atol=1e-12)
    for a, b in ((x, rx), (h0, rh0), (c0, rc0)):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=0, atol=1e-12)
    ref_params = dict(ref.named_parameters())
    for name, p in lstm.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), ref_params[name].grad.numpy(), rtol=0, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_lengths_batch_equals_sequences_run_alone(fused):
    """Each sequence of a padded batch with ``lengths`` gives what it gives when run alone, unpadded."""
    rng = np.random.default_rng(7)
    lengths = np.array([2, 5, 3, 4])
    x = rng.standard_normal((5, 4, 3))
    lstm = _lstm(fused, seed=1)
    out, (h, c) = lstm(Tensor(x), lengths=lengths)
    for b, n in enumerate(lengths):
        o_b, (h_b, c_b) = lstm(Tensor(x[:n, b:b + 1]))
        np.testing.assert_allclose(out.numpy()[:n, b:b + 1], o_b.numpy(), rtol=0, atol=1e-12)
        assert np.all(out.numpy()[n:, b] == 0.0)
        np.testing.assert_allclose(h.numpy()[:, b:b + 1], h_b.numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(c.numpy()[:, b:b + 1], c_b.numpy(), rtol=0, atol=1e-12)


def test_packed_input_ignores_batch_first():
    """A PackedSequence has no batch axis to reorder, so ``batch_first`` must not change the result."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5, 3, 3))
    packed = pack_padded_sequence(Tensor(x), [3, 5, 2], enforce_sorted=False)
    out_tm, (h_tm, _) = _lstm(batch_first=False, seed=2)(packed)
    out_bf, (h_bf, _) = _lstm(batch_first=True, seed=2)(packed)
    np.testing.assert_array_equal(out_tm.data.numpy(), out_bf.data.numpy())
    np.testing.assert_array_equal(h_tm.numpy(), h_bf.numpy())


def test_packed_input_with_lengths_raises():
    packed = pack_padded_sequence(Tensor(np.zeros((3, 2, 3))), [3, 2])
    with pytest.raises(ValueError, match="lengths"):
        _lstm()(packed, lengths=[3, 2])
