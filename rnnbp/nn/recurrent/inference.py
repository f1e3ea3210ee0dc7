"""The recurrent driver on bare arrays: what a call costs when no gradient can be asked of it.

A live recogniser or a text sampler steps a layer one time step at a time::

    with rnnbp.no_grad():
        out, state = lstm(x_t, state)      # x_t (1, 1, H_in), state carried

On the graph path each such call pays for Tensors, an autograd node per layer and
direction and a stack per final state, around a step whose arithmetic takes a
few microseconds. :class:`~rnnbp.nn.recurrent.driver.StackedRecurrence` runs its
steps (the same code, with the same checks and messages) on ndarrays through
:class:`ArrayOps` instead when

* grad mode is off, or nothing requires grad (input, initial states, parameters),
* the module can run a layer on arrays (``_has_inference``: ``nn.RNN``, ``nn.LSTM``
  and ``nn.GRU`` with ``fused=True``), and
* nothing but the arithmetic is asked for: no dropout between layers applies
  (training mode with ``dropout`` > 0 and several layers keeps the graph path, whose
  random draws it then matches exactly), and no gradient probe is attached.

Each layer and direction is then one call of its kernel's inference function
(``kernels.lstm.lstm_inference`` and its siblings), which keeps no buffer for a
backward that will not come: a whole sequence needs memory for the state and the
output only. The outputs become Tensors once, at the end.

A streamed step that is plain (:func:`plain_forward`: one direction, the carried state as
the layer returned it, no ``lengths``) skips even the driver: ``nn.RNN``, ``nn.LSTM`` and
``nn.GRU`` run each layer's compiled loop with its weights bound once (:class:`KeptSteppers`).
"""
from __future__ import annotations

from operator import attrgetter

import numpy as np

from ...autograd import grad_mode
from ...autograd.tensor import Tensor
from .packing import PackedSequence


class ArrayOps:
    """The driver's data movement (``driver.GraphOps``' names) on ndarrays: no graph, views where possible."""

    of = attrgetter("_data")  # a checked Tensor as the driver holds it

    @staticmethod
    def tensor(x: np.ndarray) -> Tensor:
        return Tensor._make(x)

    @staticmethod
    def add_batch(x):
        return x[:, None]

    @staticmethod
    def drop_batch(x):
        return x[:, 0]

    @staticmethod
    def swap_time_batch(x):
        return x.swapaxes(0, 1)

    @staticmethod
    def permute(x, order):
        return np.take(x, order, axis=1)

    @staticmethod
    def reverse(x, index):
        """Reverse time within each sequence's length (``index`` from ``reorder.reversal_index``)."""
        return x[::-1] if index is None else np.take_along_axis(x, index[:, :, None], axis=0)

    @staticmethod
    def cat(xs):
        return xs[0] if len(xs) == 1 else np.concatenate(xs, axis=2)

    @staticmethod
    def stack(xs):
        # The kernels' final states are fresh arrays, so one of them may become a view.
        return xs[0][None] if len(xs) == 1 else np.stack(xs)

    @staticmethod
    def dropout(x, p):
        raise RuntimeError("recurrent inference path: dropout between layers runs on the graph path only")

    @staticmethod
    def run(module, layer, direction, x, state, batch_sizes):
        return module._infer(layer, direction, x, state, batch_sizes)


def wants_grad(module, x, hx) -> bool:
    """Whether a gradient could be asked of this call (with grad mode on): does the input,
    an initial state or a parameter require grad?"""
    if isinstance(x, Tensor) and x._requires_grad:
        return True
    for s in (hx if isinstance(hx, (tuple, list)) else (hx,)):
        if isinstance(s, Tensor) and s._requires_grad:
            return True
    return any(p._requires_grad for p in module.parameters())


def as_tensors(output, states: tuple, source, hx):
    """The arrays a forward returns, as Tensors (a PackedSequence's data already is one).

    With grad mode on, the outputs carry the name of a non-differentiable op that made the
    input or a state, as the graph path's ops would (``Function.apply``), so that a backward
    from them still says where the gradient stopped.
    """
    states = tuple(map(Tensor._make, states))
    packed = isinstance(output, PackedSequence)
    if not packed:
        output = Tensor._make(output)
    if grad_mode._enabled:
        sources = (source,) + (tuple(hx) if isinstance(hx, (tuple, list)) else (hx,))
        nondiff = next((s._nondiff_op for s in sources if isinstance(s, Tensor) and s._nondiff_op), None)
        if nondiff is not None:
            for t in ((output.data if packed else output),) + states:
                t._nondiff_op = nondiff
    return output, states


class KeptSteppers:
    """A module's bound steppers (``RNNBase._steppers``), or the finding that it has none, and what
    they were bound to; and the module's ``StreamPlan`` (``plain_forward``), made from them.

    The steppers are closures over the parameters' arrays: a copy or a pickle of the module
    starts empty, since a deep copy would keep closures over the original's arrays (and
    run the original's weights) and closures do not pickle.
    """

    MISS = object()  # ``lookup``: nothing kept for this config and these arrays

    def __init__(self):
        self.config, self.arrays, self.steppers = None, [], None
        self.plan = None

    def lookup(self, config: tuple, arrays: list):
        """What was kept for this config and these very arrays (a list of steppers, or None when
        none can be made), else ``MISS``, having dropped what was kept (old arrays stay alive
        no longer than the next call)."""
        if self.config == config and len(arrays) == len(self.arrays):
            for a, b in zip(arrays, self.arrays):
                if a is not b:
                    break
            else:
                return self.steppers
        self.__init__()
        return self.MISS

    def keep(self, config: tuple, arrays: list, steppers: list | None) -> None:
        self.config, self.arrays, self.steppers = config, arrays, steppers

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self.__init__()

    def __deepcopy__(self, memo):
        return KeptSteppers()


class StreamPlan:
    """What ``plain_forward`` needs of a module, worked out once: whether its calls can be plain at
    all, and if so its steppers and the shapes to check, for the parameters' arrays it was made with.

    It holds while the module's attributes stay as they were (``RNNBase.__setattr__`` drops it on any
    assignment: a rate, the backend, a parameter replaced, a probe attached), its training flag is
    the one it was made in (``train()`` sets the flag directly), and its parameters hold the same
    arrays (``valid``: an in-place update is seen, being the same memory; a replaced array is not).
    """

    __slots__ = ("training", "arrays", "steppers", "dtype", "input_size", "batch_first", "num_layers",
                 "state_sizes", "n_states")

    def __init__(self, module):
        self.training = module.training
        self.arrays = [None if p is None else p._data for p in module._parameters.values()]
        self.steppers = None  # not plain: the module's calls take the driver's way
        if module.bidirectional or not module._arithmetic_only():
            return
        self.n_states = 2 if module.has_cell_state else 1
        self.dtype = module._param_dtype()
        self.steppers = module._steppers(self.dtype, self.n_states)
        self.input_size, self.batch_first, self.num_layers = module.input_size, module.batch_first, module.num_layers
        self.state_sizes = module._state_sizes()

    def valid(self, module) -> bool:
        if module.training is not self.training:
            return False
        params = module._parameters
        if len(params) != len(self.arrays):
            return False
        for p, a in zip(params.values(), self.arrays):
            if (None if p is None else p._data) is not a:
                return False
        return True


def plain_forward(module, input, hx):
    """The streamed step's short way: ``module(input, hx)`` under ``no_grad`` when the call is plain,
    else None (the caller then takes the driver's way, which checks and reports everything).

    Plain: a time-major (L, N, H_in) input (or batch-first with L = 1) of the parameters' dtype,
    the carried state given as Tensors of exactly the expected shapes and dtype (a pair for an
    LSTM, one Tensor otherwise), one direction, no ``lengths``, a module with nothing to do but
    its layers' arithmetic (``StackedRecurrence._arithmetic_only``) and compiled loops for them
    (``RNNBase._steppers``). Each layer is then one call of its compiled loop, with its weights
    bound once, on the given arrays; the results become Tensors once. What depends on the module
    alone is worked out once (``StreamPlan``). ``rnn_speed.py --streaming`` times this path.
    """
    if grad_mode._enabled or type(input) is not Tensor:
        return None
    kept = module.__dict__.get("_kept_steppers")
    plan = None if kept is None else kept.plan
    if plan is None or not plan.valid(module):
        plan = StreamPlan(module)
        kept = module.__dict__.get("_kept_steppers")  # ``_steppers`` may have made it
        if kept is None:
            kept = module._kept_steppers = KeptSteppers()
        kept.plan = plan
    steppers = plan.steppers
    if steppers is None:
        return None
    x = input._data
    if x.dtype != plan.dtype or x.ndim != 3 or x.shape[2] != plan.input_size or x.size == 0 or \
            not x.flags.c_contiguous:
        return None
    if plan.batch_first:
        if x.shape[1] != 1:
            return None
        x = x.reshape(1, x.shape[0], x.shape[2])  # (N, 1, H_in) -> (1, N, H_in), a view
    if type(hx) is tuple:  # an LSTM's (h, c), and only that
        if plan.n_states != 2 or len(hx) != 2:
            return None
        states = hx
    elif plan.n_states == 1:
        states = (hx,)
    else:
        return None
    L, N = plan.num_layers, x.shape[1]
    for s, size in zip(states, plan.state_sizes):
        if type(s) is not Tensor or s._data.shape != (L, N, size) or s._data.dtype != x.dtype:
            return None
    if len(states) == 2:  # fresh arrays: each layer's loop updates its rows in place
        h, c = states[0]._data.copy(), states[1]._data.copy()
        for layer, run in enumerate(steppers):
            x = run(x, h[layer], c[layer])
        finals = (Tensor._make(h), Tensor._make(c))
    else:
        h = states[0]._data.copy()
        for layer, run in enumerate(steppers):
            x = run(x, h[layer])
        finals = Tensor._make(h)
    if plan.batch_first:
        x = x.reshape(x.shape[1], 1, x.shape[2])
    return Tensor._make(x), finals
