"""The LSTM kernel's compiled whole-sequence loops (``kernels.compiled_lstm``): against the NumPy reference
and the composed cells, gradcheck, the probe's per-step fallback, and the lean inference path and its memory."""
import tracemalloc

import numpy as np
import pytest

import rnnbp
from rnnbp import nn
from rnnbp.autograd import gradcheck
from rnnbp.nn.recurrent.kernels import compiled_lstm, lstm, numba_steps
from rnnbp.nn.recurrent.kernels.lstm import LSTMLayer, lstm_inference

pytestmark = pytest.mark.skipif(not numba_steps.available(), reason="numba is not installed")

T, B, I, H = 6, 4, 3, 5
SIZES = np.array([3, 3, 2, 1, 0, 0])  # ragged batch_sizes: lengths 4, 3, 2 and 0; no row runs the last 2 steps
LENGTHS = np.array([4, 1, 6, 0])      # module-level lengths (unsorted, one of 0)


def _arrays(dtype=np.float64, proj=0, bias=True, seed=0, batch=B):
    """x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr for one layer (P = proj or H)."""
    rng = np.random.default_rng(seed)
    P = proj or H
    f = lambda *s: (0.5 * rng.standard_normal(s)).astype(dtype)  # noqa: E731
    return [f(T, batch, I), f(batch, P), f(batch, H), f(4 * H, I), f(4 * H, P), f(4 * H) if bias else None,
            f(4 * H) if bias else None, f(P, H) if proj else None]


def _apply(arrays, backend, batch_sizes=None, record=None, use=(True, True, True), seed=1):
    """Forward and backward of one kernel -> [out, h_n, c_n, then every input's gradient]."""
    tensors = [None if a is None else rnnbp.tensor(a.copy(), requires_grad=True) for a in arrays]
    outs = LSTMLayer.apply(*tensors, batch_sizes=batch_sizes, backend=backend, record=record)
    rng = np.random.default_rng(seed)
    loss = 0
    for o, used in zip(outs, use):
        if used:
            loss = loss + (o * rnnbp.tensor(rng.standard_normal(o.shape).astype(o.dtype))).sum()
    loss.backward()
    return [o.numpy() for o in outs] + [None if t is None else t.grad.numpy() for t in tensors]


def _assert_all_close(got, want, **tol):
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want)):
        if a is None or b is None:
            assert a is None and b is None, i
        else:
            assert a.dtype == b.dtype, i
            np.testing.assert_allclose(a, b, err_msg=f"item {i}", **tol)


@pytest.fixture
def compiled_only(monkeypatch):
    """Make the per-step path raise, so that a test sees the compiled loops run (call after the reference)."""
    def fail(*args, **kwargs):
        raise AssertionError("the per-step path ran")

    def use():
        monkeypatch.setattr(lstm, "_forward_steps", fail)
        monkeypatch.setattr(lstm, "_backward_steps", fail)
        monkeypatch.setattr(lstm, "_inference_steps", fail)
    return use


@pytest.mark.parametrize("case", ["plain", "no_bias", "proj", "ragged", "ragged_proj", "only_out", "only_states"])
def test_kernel_compiled_equals_numpy_reference_float64(case, compiled_only):
    arrays = _arrays(proj=2 if "proj" in case else 0, bias=case != "no_bias")
    kw = dict(batch_sizes=SIZES if "ragged" in case else None,
              use={"only_out": (True, False, False), "only_states": (False, True, True)}.get(case, (True,) * 3))
    want = _apply(arrays, "numpy", **kw)
    compiled_only()
    got = _apply(arrays, "numba", **kw)
    _assert_all_close(got, want, rtol=1e-10, atol=1e-12)
    if "ragged" in case:  # outputs zero past each row's length
        lengths = (SIZES[None, :] > np.arange(B)[:, None]).sum(axis=1)
        assert not np.any(got[0][np.arange(T)[:, None] >= lengths[None, :]])


def test_kernel_compiled_float32_is_close_to_numpy_reference():
    arrays = _arrays(dtype=np.float32, proj=2)
    got = _apply(arrays, "numba", batch_sizes=SIZES)
    want = _apply(arrays, "numpy", batch_sizes=SIZES)
    assert all(g is None or g.dtype == np.float32 for g in got)
    _assert_all_close(got, want, rtol=2e-5, atol=2e-6)


MODULE_OPTIONS = {
    "plain": dict(),
    "proj": dict(proj_size=3),
    "ragged": dict(ragged=True),
    "bidirectional": dict(bidirectional=True, ragged=True),
    "two_layers_proj": dict(num_layers=2, proj_size=2, with_state=True),
    "everything": dict(num_layers=2, bidirectional=True, proj_size=2, ragged=True, with_state=True,
                       batch_first=True),
}


def _module_run(opts, backend, fused=True, dtype=np.float64):
    """Outputs and every gradient of an nn.LSTM with ``opts`` (same weights and inputs for every backend)."""
    opts = dict(opts)
    ragged, with_state = opts.pop("ragged", False), opts.pop("with_state", False)
    rnnbp.manual_seed(0)
    layer = nn.LSTM(I, H, fused=fused, backend=backend, **opts).to(dtype)
    rng = np.random.default_rng(1)
    shape = (B, T, I) if layer.batch_first else (T, B, I)
    x = rnnbp.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
    hx = None
    if with_state:
        hx = tuple(rnnbp.tensor(rng.standard_normal(s).astype(dtype), requires_grad=True)
                   for s in layer._state_shapes(B))
    out, (h_n, c_n) = layer(x, hx, lengths=LENGTHS if ragged else None)
    loss = sum((o * rnnbp.tensor(rng.standard_normal(o.shape).astype(dtype))).sum() for o in (out, h_n, c_n))
    loss.backward()
    leaves = [x] + list(hx or ())
    return ([o.numpy() for o in (out, h_n, c_n)] + [t.grad.numpy() for t in leaves]
            + [p.grad.numpy() for p in layer.parameters()])


@pytest.mark.parametrize("name", list(MODULE_OPTIONS))
def test_module_compiled_equals_numpy_and_composed_float64(name, compiled_only):
    opts = MODULE_OPTIONS[name]
    numpy_ref = _module_run(opts, "numpy")
    composed = _module_run(opts, "numpy", fused=False)
    compiled_only()
    got = _module_run(opts, "auto")
    _assert_all_close(got, numpy_ref, rtol=1e-10, atol=1e-12)
    _assert_all_close(got, composed, rtol=1e-10, atol=1e-12)


def test_module_compiled_float32_is_close_to_numpy():
    opts = MODULE_OPTIONS["everything"]
    got = _module_run(opts, "auto", dtype=np.float32)
    want = _module_run(opts, "numpy", dtype=np.float32)
    _assert_all_close(got, want, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("proj", [0, 2])
def test_compiled_gradcheck(proj, compiled_only):
    compiled_only()
    arrays = _arrays(proj=proj)
    tensors = [rnnbp.tensor(a, requires_grad=True) for a in arrays if a is not None]

    def fn(*ts):
        it = iter(ts)
        args = [None if a is None else next(it) for a in arrays]
        return LSTMLayer.apply(*args, batch_sizes=SIZES, backend="numba")

    assert gradcheck(fn, tensors, atol=1e-6, rtol=1e-4)


def test_probe_runs_the_per_step_path_with_the_same_gradients():
    """A gradient probe needs dL/dh_t at every step: the layer falls back to its per-step loop
    (numba step arithmetic), with the compiled path's gradients."""
    arrays = _arrays(proj=2)
    seen = []
    probed = _apply(arrays, "numba", batch_sizes=SIZES, record=lambda t, dh: seen.append((t, dh.copy())))
    plain = _apply(arrays, "numba", batch_sizes=SIZES)
    _assert_all_close(probed, plain, rtol=1e-10, atol=1e-12)
    assert [t for t, _ in seen] == [3, 2, 1, 0]  # the steps any row runs, last first


# ------------------------------------------------------------------ inference


def _training_forward(arrays, batch_sizes, backend):
    ctx = LSTMLayer.__new__(LSTMLayer)
    return [np.array(a) for a in LSTMLayer.forward(ctx, *arrays, batch_sizes, backend)]


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("case", ["plain", "proj", "ragged_proj", "view", "chunks", "no_bias", "one_row",
                                  "one_row_proj", "one_row_ragged"])
def test_inference_equals_training_forward(backend, case, monkeypatch):
    """Inference equals the training forward; a batch of one (a streamed step) takes its own products."""
    one = case.startswith("one_row")
    arrays = _arrays(proj=2 if "proj" in case else 0, bias=case != "no_bias", batch=1 if one else B)
    sizes = (np.array([1, 1, 1, 0, 0, 0]) if one else SIZES) if "ragged" in case else None
    want = _training_forward(arrays, sizes, backend)
    if case == "chunks":  # the input projection in chunks of 2 steps (then 1 for the last)
        monkeypatch.setattr(compiled_lstm, "INFERENCE_CHUNK", 2 * B * 4 * H)
    if case == "view":  # a reversed time axis, as the driver hands a reverse direction
        arrays[0] = np.ascontiguousarray(arrays[0][::-1])[::-1]
        assert not arrays[0].flags.c_contiguous
    given = [None if a is None else a.copy() for a in arrays]
    got = lstm_inference(*given, batch_sizes=sizes, backend=backend)
    for a, b in zip(given, arrays):  # the inputs are not written
        assert (a is None and b is None) or np.array_equal(a, b)
    _assert_all_close(list(got), want, rtol=1e-12, atol=1e-14)
    assert got[0].flags.owndata  # a fresh output the caller owns


def test_inference_streams_one_step_at_a_time_like_a_whole_sequence():
    arrays = _arrays(proj=2)
    out, h, c = lstm_inference(*arrays, backend="numba")
    x, state = arrays[0], arrays[1:3]
    for t in range(T):
        o, *state = lstm_inference(x[t:t + 1], *state, *arrays[3:], backend="numba")
        np.testing.assert_allclose(o[0], out[t], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(state[0], h, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(state[1], c, rtol=1e-12, atol=1e-14)


def test_module_inference_under_no_grad_equals_training():
    rnnbp.manual_seed(0)
    layer = nn.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=2).double()
    x = rnnbp.tensor(np.random.default_rng(0).standard_normal((T, B, I)))
    out, (h, c) = layer(x, lengths=LENGTHS)
    with rnnbp.no_grad():
        out2, (h2, c2) = layer(x, lengths=LENGTHS)
    for a, b in ((out, out2), (h, h2), (c, c2)):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("chunk", [None, 1 << 12])
def test_inference_memory_is_the_output_the_state_and_one_chunk(backend, chunk, monkeypatch):
    """T = 4000 steps: beyond its output, inference allocates one projection chunk
    (``INFERENCE_CHUNK`` gate items), not the (T, B, 4H) training buffers."""
    if chunk is not None:
        monkeypatch.setattr(compiled_lstm, "INFERENCE_CHUNK", chunk)
    Tl, Bl, Hl = 4000, 4, 32
    rng = np.random.default_rng(0)
    f = lambda *s: (0.3 * rng.standard_normal(s)).astype(np.float32)  # noqa: E731
    x = f(Tl, Bl, 8)
    args = (f(Bl, Hl), f(Bl, Hl), f(4 * Hl, 8), f(4 * Hl, Hl), f(4 * Hl), f(4 * Hl), None)
    lstm_inference(x[:3], *args, backend=backend)  # compiled and warm
    out_bytes = Tl * Bl * Hl * 4
    chunk_bytes = compiled_lstm.INFERENCE_CHUNK * 4
    tracemalloc.start()  # traces NumPy's allocations and numba's (NRT allocates through Python's raw allocator)
    try:
        out, _, _ = lstm_inference(x, *args, backend=backend)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.nbytes == out_bytes
    assert peak - out_bytes < chunk_bytes + 128 * 1024, peak  # the state, the weights (NumPy path: reordered)
    assert peak - out_bytes < Tl * Bl * 4 * Hl * 4 // 3  # the gates alone would be (T, B, 4H)


CACHED_ORDER_PROGRAM = """
import numpy as np, rnnbp
from rnnbp import nn

def grads(dtype, backend):
    rnnbp.manual_seed(0)
    lstm = nn.LSTM(3, 4, proj_size=2, backend=backend).to(dtype)
    x = rnnbp.tensor(np.random.default_rng(1).standard_normal((5, 2, 3)).astype(dtype))
    out, (h, c) = lstm(x)
    (out.sum() + c.sum()).backward()
    return [p.grad.numpy().astype(np.float64) for p in lstm.parameters()]

grads(np.float64, "numba")  # a float64 loop first: then every float32 product must still be its own
for got, want in zip(grads(np.float32, "numba"), grads(np.float32, "numpy")):
    assert np.allclose(got, want, rtol=1e-4, atol=1e-5), (got, want)
print("ok")
"""


def test_loops_loaded_from_numba_s_cache_call_their_own_products(tmp_path):
    """Two fresh processes (the second loads the compiled loops from numba's on-disk cache) run a
    float64 layer, then a float32 one: every BLAS variant is compiled under its own name, so a
    cached loop cannot link to another variant's product."""
    import subprocess
    import sys

    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", CACHED_ORDER_PROGRAM], capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
