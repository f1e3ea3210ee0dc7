"""The GRU and Elman kernels' compiled whole-sequence loops (``kernels.compiled_gru`` / ``compiled_elman``):
against the NumPy reference and the composed cells, gradcheck, the inference path and its memory."""
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import rnnbp
from rnnbp import nn
from rnnbp.autograd import gradcheck
from rnnbp.nn.recurrent.kernels import compiled_elman, compiled_gru, elman, numba_steps
from rnnbp.nn.recurrent.kernels.elman import ElmanLayer, elman_inference
from rnnbp.nn.recurrent.kernels.gru import GRULayer, gru_inference

pytestmark = pytest.mark.skipif(not numba_steps.available(), reason="numba is not installed")

KINDS = ["gru", "tanh", "relu"]  # the GRU, and the Elman RNN with each nonlinearity
T, B, I, H = 8, 4, 3, 5
SIZES = np.array([3, 3, 2, 1, 1, 1, 0, 0])  # ragged batch_sizes: lengths 6, 3, 2 and 0; no row runs the last 2


def _arrays(kind, dtype=np.float64, bias=True, seed=0):
    """x, h0, w_ih, w_hh, b_ih, b_hh for one layer."""
    rng = np.random.default_rng(seed)
    G = 3 * H if kind == "gru" else H
    f = lambda *s: (0.5 * rng.standard_normal(s)).astype(dtype)  # noqa: E731
    return [f(T, B, I), f(B, H), f(G, I), f(G, H), f(G) if bias else None, f(G) if bias else None]


def _apply(kind, arrays, backend, batch_sizes=None, record=None, use_out=True, use_hn=True, seed=1):
    """Forward and backward of one kernel -> [out, h_n, then every input's gradient]."""
    tensors = [None if a is None else rnnbp.tensor(a.copy(), requires_grad=True) for a in arrays]
    if kind == "gru":
        out, h_n = GRULayer.apply(*tensors, batch_sizes=batch_sizes, backend=backend, record=record)
    else:
        out, h_n = ElmanLayer.apply(*tensors, batch_sizes=batch_sizes, nonlinearity=kind, backend=backend,
                                    record=record)
    rng = np.random.default_rng(seed)
    loss = 0
    if use_out:
        loss = loss + (out * rnnbp.tensor(rng.standard_normal(out.shape).astype(out.dtype))).sum()
    if use_hn:
        loss = loss + (h_n * h_n).sum()
    loss.backward()
    return [out.numpy(), h_n.numpy()] + [None if t is None else t.grad.numpy() for t in tensors]


def _assert_all_close(got, want, **tol):
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want)):
        if a is None or b is None:
            assert a is None and b is None, i
        else:
            assert a.dtype == b.dtype, i
            np.testing.assert_allclose(a, b, err_msg=f"item {i}", **tol)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", ["plain", "no_bias", "ragged", "only_out", "only_hn"])
@pytest.mark.parametrize("small", [True, False], ids=["small-weight layouts", "large-weight layouts"])
def test_compiled_equals_numpy_reference_float64(kind, case, small, monkeypatch):
    """Both ways of multiplying by W_hh^T and W_hh (``compiled_gru.recurrent_weights``)."""
    monkeypatch.setattr(compiled_gru, "SMALL_WEIGHTS", 1 << 20 if small else -1)
    _, w_t_forward, w_t_backward = compiled_gru.recurrent_weights(np.zeros((3 * H, H)), compiled_gru.loops(), T)
    assert (w_t_forward.size > 0, w_t_backward.size > 0) == (small, not small)
    arrays = _arrays(kind, bias=case != "no_bias")
    kw = dict(batch_sizes=SIZES if case == "ragged" else None, use_out=case != "only_hn",
              use_hn=case != "only_out")
    got = _apply(kind, arrays, "numba", **kw)
    want = _apply(kind, arrays, "numpy", **kw)
    _assert_all_close(got, want, rtol=1e-10, atol=1e-12)
    if case == "ragged":  # outputs zero past each row's length
        lengths = (SIZES[None, :] > np.arange(B)[:, None]).sum(axis=1)
        assert not np.any(got[0][np.arange(T)[:, None] >= lengths[None, :]])
    got = _infer(kind, arrays[0], arrays, kw["batch_sizes"])
    _assert_all_close(got, want[:2], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", KINDS)
def test_compiled_float32_is_close_to_numpy_reference(kind):
    arrays = _arrays(kind, dtype=np.float32)
    got = _apply(kind, arrays, "numba", batch_sizes=SIZES)
    want = _apply(kind, arrays, "numpy", batch_sizes=SIZES)
    assert all(g is None or g.dtype == np.float32 for g in got)
    _assert_all_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_gradient_probe_falls_back_to_the_step_loop_and_agrees(kind):
    arrays = _arrays(kind)
    seen = []
    got = _apply(kind, arrays, "numba", batch_sizes=SIZES, record=lambda t, dh: seen.append((t, dh.copy())))
    want = _apply(kind, arrays, "numba", batch_sizes=SIZES)
    _assert_all_close(got, want, rtol=1e-10, atol=1e-12)
    assert [t for t, _ in seen] == [5, 4, 3, 2, 1, 0]  # steps with running rows, last first
    assert [dh.shape[0] for _, dh in seen] == [1, 1, 1, 2, 3, 3]


def _layer(kind, **kw):
    if kind == "gru":
        return nn.GRU(I, H, **kw)
    return nn.RNN(I, H, nonlinearity=kind, **kw)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("opts", [dict(), dict(bias=False), dict(num_layers=2, bidirectional=True, ragged=True),
                                  dict(bidirectional=True, batch_first=True, ragged=True)],
                         ids=["plain", "no_bias", "2layers-bidir-ragged", "bidir-batch_first-ragged"])
def test_layer_compiled_equals_composed_cells_float64(kind, opts):
    opts = dict(opts)
    ragged = opts.pop("ragged", False)
    rnnbp.manual_seed(0)
    fused = _layer(kind, **opts).double()
    composed = _layer(kind, fused=False, **opts).double()
    composed.load_state_dict(fused.state_dict())
    rng = np.random.default_rng(2)
    shape = (B, T, I) if opts.get("batch_first") else (T, B, I)
    xs = rng.standard_normal(shape)
    h0 = rng.standard_normal((fused.num_layers * fused.num_directions, B, H))
    lengths = np.array([4, 6, 0, 1]) if ragged else None
    results = []
    for layer in (fused, composed):
        x, h = rnnbp.tensor(xs, requires_grad=True), rnnbp.tensor(h0, requires_grad=True)
        out, h_n = layer(x, h, lengths=lengths)
        ((out * out).sum() + h_n.sum()).backward()
        results.append([out.numpy(), h_n.numpy(), x.grad.numpy(), h.grad.numpy()] +
                       [p.grad.numpy() for p in layer.parameters()])
        with rnnbp.no_grad():
            out_i, h_i = layer(x.detach(), h.detach(), lengths=lengths)  # the inference path
        results[-1] += [out_i.numpy(), h_i.numpy()]
    _assert_all_close(results[0], results[1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_compiled_gradcheck(kind):
    arrays = _arrays(kind, seed=3)
    tensors = [rnnbp.tensor(a, requires_grad=True) for a in arrays]

    def fn(*ts):
        if kind == "gru":
            return GRULayer.apply(*ts, batch_sizes=SIZES, backend="numba")
        return ElmanLayer.apply(*ts, batch_sizes=SIZES, nonlinearity=kind, backend="numba")

    assert gradcheck(fn, tensors, atol=1e-6, rtol=1e-4)


def _infer(kind, x, arrays, batch_sizes=None, backend="numba"):
    if kind == "gru":
        return gru_inference(x, *arrays[1:], batch_sizes=batch_sizes, backend=backend)
    return elman_inference(x, *arrays[1:], batch_sizes=batch_sizes, nonlinearity=kind, backend=backend)


def _train_forward(kind, x, arrays, batch_sizes=None, backend="numba"):
    ctx = (GRULayer if kind == "gru" else ElmanLayer).__new__(GRULayer if kind == "gru" else ElmanLayer)
    if kind == "gru":
        out, h_n = GRULayer.forward(ctx, x, *arrays[1:], batch_sizes=batch_sizes, backend=backend)
    else:
        out, h_n = ElmanLayer.forward(ctx, x, *arrays[1:], batch_sizes=batch_sizes, nonlinearity=kind,
                                      backend=backend)
    return out.copy(), h_n


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [True, False])
def test_inference_equals_training_forward(kind, dtype, bias, monkeypatch):
    arrays = _arrays(kind, dtype=dtype, bias=bias)
    x = arrays[0]
    for batch_sizes in (None, SIZES):
        want = _train_forward(kind, x, arrays, batch_sizes, backend="numpy")
        for view in (x, x[::-1].copy()[::-1]):  # contiguous, and a reversed view (copied in chunks)
            got = _infer(kind, view, arrays, batch_sizes)
            _assert_all_close(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
            assert got[0].flags.owndata and got[1].flags.owndata  # fresh arrays the caller owns
        _assert_all_close(_train_forward(kind, x, arrays, batch_sizes), want, rtol=1e-5, atol=1e-6)
    h0 = arrays[1].copy()
    _infer(kind, x, arrays)
    np.testing.assert_array_equal(arrays[1], h0)  # the initial state is not written
    # Small projection chunks (several per sequence), and one step of one row at a time (streaming).
    monkeypatch.setattr(compiled_gru, "INFERENCE_CHUNK", 3 * H * B * 2)
    monkeypatch.setattr(elman, "INFERENCE_CHUNK", I * B * 2)
    want = _train_forward(kind, x, arrays, SIZES, backend="numpy")
    _assert_all_close(_infer(kind, x, arrays, SIZES), want, rtol=1e-5, atol=1e-6)
    _assert_all_close(_infer(kind, x[::-1].copy()[::-1], arrays, SIZES), want, rtol=1e-5, atol=1e-6)
    state = arrays[1][:1]
    for t in range(T):
        out, state = _infer(kind, x[t:t + 1, :1], [None, state] + arrays[2:])
    np.testing.assert_allclose(state, _train_forward(kind, x[:, :1], [None, arrays[1][:1]] + arrays[2:])[1],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_inference_memory_is_output_state_and_one_chunk(kind, monkeypatch):
    """A long sequence under inference allocates its output, its state, one projection chunk
    (``INFERENCE_CHUNK`` items, the GRU's only) and perhaps a copy of a small W_hh^T, nothing else;
    the training forward keeps (T, B, 3H) gates and more. (numba allocates through
    PyMem_RawMalloc, which tracemalloc sees.)"""
    chunk = 1 << 14
    monkeypatch.setattr(compiled_gru, "INFERENCE_CHUNK", chunk)
    rng = np.random.default_rng(0)
    Tl, Bl, Il, Hl = 400, 8, 16, 32
    G = 3 * Hl if kind == "gru" else Hl
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    x, h0, w_ih, w_hh, b = f(Tl, Bl, Il), f(Bl, Hl), f(G, Il), f(G, Hl), f(G)
    arrays = [x, h0, w_ih, w_hh, b, b]
    _infer(kind, x[:2], arrays)  # compiled before measuring
    out_bytes = Tl * Bl * Hl * 4
    tracemalloc.start()
    try:
        _infer(kind, x, arrays)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        _train_forward(kind, x, arrays)
        _, train_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    transposed = compiled_gru.SMALL_WEIGHTS * 4  # a transposed copy of a small W_hh, at most
    assert peak < out_bytes + (chunk * 4 if kind == "gru" else 0) + transposed + 16 * 1024
    assert train_peak > 2 * out_bytes  # what the inference path avoids


def test_backend_numpy_keeps_the_reference_path(monkeypatch):
    """backend='numpy' never touches the compiled loops."""
    def refuse():
        raise AssertionError("compiled loops used")

    monkeypatch.setattr(compiled_gru, "loops", refuse)
    monkeypatch.setattr(compiled_elman, "loops", refuse)
    for kind in KINDS:
        arrays = _arrays(kind)
        _apply(kind, arrays, "numpy", batch_sizes=SIZES)
        _infer(kind, arrays[0], arrays, backend="numpy")


_CACHE_PROBE = """
import numpy as np
from rnnbp.nn.recurrent.kernels import compiled_elman, compiled_gru, elman, gru
f = lambda *shape: np.zeros(shape, np.float32)
gru.gru_inference(f(1, 2, 3), f(2, 4), f(12, 3), f(12, 4), None, None, backend="numba")
elman.elman_inference(f(1, 2, 3), f(2, 4), f(4, 3), f(4, 4), None, None, backend="numba")
for module in (compiled_gru, compiled_elman):
    stats = module.loops()["inference"].stats
    print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
"""


@pytest.mark.skipif(bool(os.environ.get("NUMBA_DISABLE_CACHE")), reason="numba's cache is disabled")
def test_compiled_loops_load_from_numbas_cache_in_a_new_process():
    """A loop that calls BLAS through ctypes pointers, or captures another compiled function in a
    closure, is compiled again in every process (seconds); these load from the on-disk cache."""
    for _ in range(2):  # a first process may compile (a cold or stale cache) and save
        result = subprocess.run([sys.executable, "-c", _CACHE_PROBE], capture_output=True, text=True, check=True)
        hits_misses = [line.split() for line in result.stdout.split("\n") if line]
        if hits_misses == [["1", "0"], ["1", "0"]]:
            break
    assert hits_misses == [["1", "0"], ["1", "0"]], result.stdout
