"""Running a planned step over a sequence: one autograd node for a whole layer and direction.

:class:`TracedRecurrence` has the fused kernels' contract (``kernels/common``) for
any recorded cell: x (T, B, I) time-major with the batch sorted longest first,
``batch_sizes[t]`` running rows at step t (a prefix), the initial states (B, size)
and every leaf Tensor the step reads; out (T, B, H) (zero past each row's end)
and each row's final states.

Inside, every step-sized array is *packed*: step t's b_t running rows are rows
``offsets[t] : offsets[t] + b_t`` of one (N, ...) array, N = sum of b_t (for a
full batch that is (T, B, ...) flattened). The plan's phases run in order:

1. static ops once, on the fixed values;
2. hoisted ops once, on the packed input (N rows): one GEMM for ``x W^T + b``;
3. for t = 0 .. T-1 the step ops on the b_t running rows, each op's own ``forward``
   on ndarrays with a ``ctx`` of its own (kept per step for backward), no Tensor and
   no graph node; a product by a fixed weight keeps its input rows in one packed
   buffer; a run of elementwise ops is one compiled call (``fuse``), keeping what
   its backward reads in packed buffers.

Backward runs the same ops' ``backward`` in reverse: the steps from T-1 down to 0,
carrying dL/d(state) from step to step (rows that ended keep the gradient of their
final state until their own last step, as ``kernels/common.reverse_steps`` does),
then the per-step products' weight gradients as one (N-row) GEMM each, the hoisted
ops on their packed gradients, and the static ops on the gradients summed over
steps. Gradients follow the tape's rules: the same ops, the same ``needs_input_grad``;
a detached value stops them.
"""
from __future__ import annotations

import numpy as np

from ....autograd import grad_mode
from ....autograd.function import Function
from ..kernels.common import active_rows, allocator
from .graph import substitute


class TracedRecurrence(Function):
    """One layer in one direction of a recorded cell, replayed (see the module docstring).

    Inputs: x (T, B, I), the S initial states (B, size_i), then the plan's leaves.
    ``plan``: :class:`~.plan.Plan`; ``batch_sizes``: running rows per step (None: all);
    ``record(t, dh_t)``: sees dL/dh_t at every step in backward (the gradient probe).
    ``workspace``: a ``kernels.common.Workspace`` the packed buffers come from (reused across calls).
    Outputs: out (T, B, H), then the S final states.
    """

    @staticmethod
    def forward(ctx, x, *arrays, plan=None, batch_sizes=None, record=None, workspace=None):
        n_states = len(plan.state_vids)
        run = Run(plan, x, arrays[:n_states], arrays[n_states:], batch_sizes, ctx.needs_input_grad, record,
                  workspace)
        outputs = run.forward()
        ctx.run = run if run.training else None
        return outputs

    @staticmethod
    def backward(ctx, d_out, *d_finals):
        return ctx.run.backward(d_out, d_finals)


class _PackedGrad:
    """A packed (N, ...) gradient filled step by step: a step's first contribution is copied in,
    later ones added; the rows of steps nothing reached are zeroed by ``finish``."""

    def __init__(self, buf):
        self.buf, self.written = buf, set()

    def add(self, t, o, b, gr):
        if t in self.written:
            self.buf[o:o + b] += gr
        else:
            self.buf[o:o + b] = gr
            self.written.add(t)

    def set(self, t, o, b, gr):
        """Step t's complete gradient (copied unless it already is these rows)."""
        rows = self.buf[o:o + b]
        if gr is not rows and not (gr.base is self.buf and gr.__array_interface__["data"][0] ==
                                   rows.__array_interface__["data"][0] and gr.shape == rows.shape):
            rows[...] = gr
        self.written.add(t)

    def rows(self, t, o, b):
        """Step t's rows for a kernel to write the only contribution into."""
        self.written.add(t)
        return self.buf[o:o + b]

    def finish(self, sizes, offsets):
        if len(self.written) < sum(1 for b in sizes if b):
            for t, b in enumerate(sizes):
                if b and t not in self.written:
                    self.buf[offsets[t]:offsets[t] + b] = 0
        return self.buf


def _as_tuple(result):
    return result if type(result) is tuple else (result,)


class Run:
    """One replay: the packed buffers, every op's saved ``ctx``, and both passes."""

    def __init__(self, plan, x, states, leaves, batch_sizes, needs, record, workspace=None):
        self.plan, self.graph, self.record = plan, plan.graph, record
        self.empty, self.zeros = allocator(workspace)
        T, B = x.shape[0], x.shape[1]
        self.T, self.B = T, B
        self.sizes = sizes = active_rows(batch_sizes, T, B)
        offsets = [0]
        for b in sizes:
            offsets.append(offsets[-1] + b)
        self.offsets, self.N = offsets, offsets[-1]
        self.full = all(b == B for b in sizes)
        self.x, self.states, self.leaves = x, states, leaves
        self.dtype = x.dtype
        n = len(states)
        self.need_x, self.need_states, self.need_leaves = needs[0], tuple(needs[1:1 + n]), tuple(needs[1 + n:])
        self.training = grad_mode._enabled and any(needs)
        if self.training:
            self.node_needs, self.rg = plan.flows(self.need_x, self.need_states, self.need_leaves)
        else:
            self.node_needs = [tuple(False for _ in node.inputs) for node in self.graph.nodes]
            self.rg = [False] * len(self.graph.values)
        self.hoist_items, self.step_items = plan.hoisted_items, plan.step_items
        self.ctx = {}        # (node id, step or -1) -> the op's ctx
        self.group_in = {}   # (id(group), step or -1) -> the input arrays its backward reads
        self.bound = {}      # id(group) -> _BoundGroup: its kernels and buffers for this run

    # ------------------------------------------------------------------ forward
    def _pack(self, x):
        if self.full:
            return x.reshape((self.T * self.B,) + x.shape[2:])
        return np.concatenate([x[t, :b] for t, b in enumerate(self.sizes) if b], axis=0)

    def _node_forward(self, nid, env, rows, t):
        node = self.graph.nodes[nid]
        op = node.op
        ctx = op.__new__(op)
        ctx.needs_input_grad = self.node_needs[nid]
        kwargs = substitute(node.kwargs, rows) if node.batched else node.kwargs
        result = op.forward(ctx, *[env[v] for v in node.inputs], **kwargs)
        if type(result) is tuple:
            for vid, r in zip(node.outputs, result):
                env[vid] = r
        else:
            env[node.outputs[0]] = result
        if self.training and node.recorded:
            self.ctx[nid, t] = ctx

    def _linear_forward(self, nid, lin, env, rows, o):
        """y = x W^T (+ b) into the packed output rows; the input rows kept when W needs a gradient."""
        bound = self.lin.get(nid)
        if bound is None:
            node = self.graph.nodes[nid]
            yv = self.graph.values[node.outputs[0]]
            w = env[node.inputs[1]]
            # W^T as a C-contiguous copy: a transposed view makes every step's product about a quarter slower
            bound = self.lin[nid] = (node.inputs[0], np.ascontiguousarray(w.T if lin.transposed else w),
                                     None if lin.bias is None else env[lin.bias], self.lin_x.get(nid),
                                     self.empty((self.N,) + tuple(yv.shape), yv.dtype), node.outputs[0])
        xv, w, bias, keep, out, yv = bound
        xin = env[xv]
        if keep is not None:
            keep[o:o + rows] = xin
        y = out[o:o + rows]
        np.matmul(xin, w, out=y)
        if bias is not None:
            y += bias
        env[yv] = y

    def _group_forward(self, group, env, rows, o, t):
        bound = self.bound.get(id(group))
        if bound is None:
            bound = self.bound[id(group)] = _BoundGroup(self, group, env)
        bound.forward(self, env, rows, o, t)

    def forward(self):
        plan, graph = self.plan, self.graph
        values, place = graph.values, plan.place
        T, B, N, sizes, offsets = self.T, self.B, self.N, self.sizes, self.offsets

        # Fixed values: leaves, constants, then the static ops.
        env = [None] * len(values)
        fills = {}
        for vid, v in enumerate(values):
            if v.kind == "leaf":
                env[vid] = self.leaves[v.index]
            elif v.kind == "const":
                if v.fill:
                    fills[vid] = np.full((max(B, N),) + tuple(v.shape), v.data, dtype=v.dtype)
                else:
                    env[vid] = v.data
        for nid in plan.static:
            self._node_forward(nid, env, None, -1)
        self.env = env

        # Per-step products by fixed weights keep their input rows for one weight-gradient GEMM.
        self.lin_x, self.lin = {}, {}
        if self.training:
            for nid in plan.linear:
                if self.node_needs[nid][1]:
                    xv = values[graph.nodes[nid].inputs[0]]
                    self.lin_x[nid] = self.empty((N,) + tuple(xv.shape), xv.dtype)

        # Hoisted ops over all steps' rows.
        xp = self._pack(self.x)
        hoist = list(env)
        hoist[plan.x_vid] = xp
        for vid, a in fills.items():
            hoist[vid] = a[:N]
        for item in self.hoist_items:
            if type(item) is int:
                self._node_forward(item, hoist, N, -1)
            else:
                self._group_forward(item, hoist, N, 0, -1)
        self.hoist = hoist

        # The steps.
        linear = plan.linear
        reads = [(vid, place[vid] == "hoist", fills[vid] if place[vid] == "fill" else hoist[vid])
                 for vid in plan.step_reads]
        outputs, state_vids, x_vid = graph.outputs, plan.state_vids, plan.x_vid
        out = (self.empty if self.full else self.zeros)((T, B) + tuple(values[outputs[0]].shape),
                                                        values[outputs[0]].dtype)
        prev = list(self.states)
        finals = [np.array(s, copy=True) for s in self.states]
        items = self.step_items
        for t, b in enumerate(sizes):
            if b == 0:
                continue
            o = offsets[t]
            senv = list(env)
            senv[x_vid] = xp[o:o + b]
            for i, vid in enumerate(state_vids):
                senv[vid] = prev[i][:b]
            for vid, packed, a in reads:
                senv[vid] = a[o:o + b] if packed else a[:b]
            for item in items:
                if type(item) is int:
                    lin = linear.get(item)
                    if lin is not None:
                        self._linear_forward(item, lin, senv, b, o)
                    else:
                        self._node_forward(item, senv, b, t)
                else:
                    self._group_forward(item, senv, b, o, t)
            new = [senv[vid] for vid in outputs]
            out[t, :b] = new[0]
            b_next = sizes[t + 1] if t + 1 < T else 0
            if b_next < b:
                for i, s in enumerate(new):
                    finals[i][b_next:b] = s[b_next:b]
            prev = new
        return (out,) + tuple(finals)

    # ----------------------------------------------------------------- backward
    def _node_backward(self, nid, grads, t, put):
        in_grads = _as_tuple(self.graph.nodes[nid].op.backward(self.ctx[nid, t], *grads))
        node = self.graph.nodes[nid]
        for vid, need, gr in zip(node.inputs, self.node_needs[nid], in_grads):
            if need and gr is not None:
                put(vid, gr)

    def _group_backward(self, group, grad_of, rows, o, t, put, direct=None):
        """A fused group's backward at one step (t = -1: the hoisted phase). ``direct(v, t)`` may give
        the rows of a packed gradient buffer for the kernel to write input v's gradient into, and
        whether it must still be ``put``."""
        self.bound[id(group)].backward(self, grad_of, rows, o, t, put, direct)

    def _sole_readers(self):
        """Values exactly one step item reads and that are not a new state: a fused group reading one
        may write its gradient straight into a packed buffer (it is the only contribution)."""
        counts = {}
        for item in self.step_items:
            ins = self.graph.nodes[item].inputs if type(item) is int else item.inputs
            for v in set(ins):
                counts[v] = counts.get(v, 0) + 1
        outs = set(self.graph.outputs)
        return {v for v, c in counts.items() if c == 1 and v not in outs}

    def backward(self, d_out, d_finals):
        plan, graph = self.plan, self.graph
        values, place, nodes = graph.values, plan.place, graph.nodes
        node_needs, rg = self.node_needs, self.rg
        T, N, sizes, offsets = self.T, self.N, self.sizes, self.offsets
        state_vids, outputs, out_needs = plan.state_vids, graph.outputs, graph.output_needs
        record, linear = self.record, plan.linear
        for bound in self.bound.values():
            bound.accs = None  # a second backward (retain_graph) starts its sums afresh
        carry = []
        for i, s in enumerate(self.states):
            d = d_finals[i]
            carry.append(np.zeros(s.shape, s.dtype) if d is None else np.array(d, copy=True))
        d_hoist = {}   # vid -> _PackedGrad of a hoisted value or x
        fixed = {}     # vid -> gradient of a fixed value, summed over steps

        def put_fixed(vid, gr):
            fixed[vid] = gr if vid not in fixed else fixed[vid] + gr

        def packed_grad(vid):
            pg = d_hoist.get(vid)
            if pg is None:
                pg = d_hoist[vid] = _PackedGrad(self.empty((N,) + tuple(values[vid].shape), values[vid].dtype))
            return pg

        lin_dy, lin_out = {}, {}
        for nid in linear:
            if any(node_needs[nid][1:]):
                yv = values[nodes[nid].outputs[0]]
                lin_dy[nid] = _PackedGrad(self.empty((N,) + tuple(yv.shape), yv.dtype))
                lin_out[nodes[nid].outputs[0]] = nid
        sole = self._sole_readers()

        def direct(vid, t):
            if vid not in sole:
                return None
            o, b = offsets[t], sizes[t]
            p = place[vid]
            if p in ("hoist", "x"):
                return packed_grad(vid).rows(t, o, b), False
            nid = lin_out.get(vid)
            if nid is not None:
                return lin_dy[nid].rows(t, o, b), True
            return None

        items = [item for item in reversed(self.step_items)
                 if type(item) is not int or any(node_needs[item])]
        for t in range(T - 1, -1, -1):
            b = sizes[t]
            if b == 0:
                continue
            o = offsets[t]
            g = {}

            def put(vid, gr, o=o, b=b, g=g, t=t):
                p = place[vid]
                if p == "step" or p == "state":
                    g[vid] = gr if vid not in g else g[vid] + gr
                elif p == "hoist" or p == "x":
                    packed_grad(vid).add(t, o, b, gr)
                elif p == "fixed":
                    put_fixed(vid, gr)

            for i, vid in enumerate(outputs):
                if not out_needs[i] or not rg[vid]:
                    continue
                gi = carry[i][:b].copy()
                if i == 0 and d_out is not None:
                    gi += d_out[t, :b]
                if i == 0 and record is not None:
                    record(t, gi)
                put(vid, gi)
            for item in items:
                if type(item) is not int:
                    self._group_backward(item, g.get, b, o, t, put, direct)
                    continue
                node = nodes[item]
                outs = node.outputs
                if len(outs) == 1:
                    gr = g.get(outs[0])
                    if gr is None:
                        continue
                    grads = (gr,)
                else:
                    grads = tuple(g.get(v) for v in outs)
                    if all(x is None for x in grads):
                        continue
                lin = linear.get(item)
                if lin is None:
                    self._node_backward(item, grads, t, put)
                    continue
                dy = grads[0]
                pg = lin_dy.get(item)
                if pg is not None:
                    pg.set(t, o, b, dy)
                if node_needs[item][0]:
                    w = self.env[node.inputs[1]]
                    put(node.inputs[0], dy @ w if lin.transposed else dy @ w.T)  # Linear: dy W; MatMul: dy W^T
            for i, vid in enumerate(state_vids):
                gs = g.get(vid)
                if gs is None:
                    carry[i][:b] = 0
                else:
                    carry[i][:b] = gs

        # Per-step products by fixed weights: their weight gradients over all steps at once.
        for nid, pg in lin_dy.items():
            node, needs, lin = nodes[nid], node_needs[nid], linear[nid]
            dy_all = pg.finish(sizes, offsets)
            if needs[1]:
                x_all = self.lin_x[nid]
                put_fixed(node.inputs[1], dy_all.T @ x_all if lin.transposed else x_all.T @ dy_all)
            if lin.bias is not None and needs[2]:
                put_fixed(lin.bias, dy_all.sum(axis=0))

        # Hoisted ops, on the packed gradients.
        d_all = {vid: pg.finish(sizes, offsets) for vid, pg in d_hoist.items()}

        def put_hoist(vid, gr):
            p = place[vid]
            if p in ("hoist", "x"):
                d_all[vid] = gr if vid not in d_all else d_all[vid] + gr
            elif p == "fixed":
                put_fixed(vid, gr)

        for item in reversed(self.hoist_items):
            if type(item) is not int:
                if any(v in d_all for v in item.outputs):
                    self._group_backward(item, d_all.get, N, 0, -1, put_hoist)
                continue
            if not any(node_needs[item]):
                continue
            grads = tuple(d_all.get(v) for v in nodes[item].outputs)
            if all(x is None for x in grads):
                continue
            self._node_backward(item, grads, -1, put_hoist)

        # Fused groups' parameter gradients, summed over all rows of all steps.
        for bound in self.bound.values():
            for v, acc in zip(bound.k.grad_acc, bound.accs or ()):
                put_fixed(v, acc.reshape(values[v].shape))

        # Static ops, on the gradients summed over all steps.
        for nid in reversed(plan.static):
            if not any(node_needs[nid]):
                continue
            grads = tuple(fixed.get(v) for v in nodes[nid].outputs)
            if all(x is None for x in grads):
                continue
            self._node_backward(nid, grads, -1, put_fixed)

        return (self._dx(d_all.get(plan.x_vid)),) + self._d_states(carry) + self._d_leaves(fixed)

    def _dx(self, dxp):
        if not self.need_x:
            return None
        x = self.x
        if dxp is None:
            return np.zeros(x.shape, x.dtype)
        if self.full:
            return dxp.reshape(x.shape)
        dx = np.zeros(x.shape, x.dtype)
        for t, b in enumerate(self.sizes):
            if b:
                dx[t, :b] = dxp[self.offsets[t]:self.offsets[t] + b]
        return dx

    def _d_states(self, carry):
        return tuple(c if need else None for c, need in zip(carry, self.need_states))

    def _d_leaves(self, fixed):
        values = self.graph.values
        leaf_vids = {v.index: vid for vid, v in enumerate(values) if v.kind == "leaf"}
        out = []
        for i, need in enumerate(self.need_leaves):
            gr = fixed.get(leaf_vids[i]) if need else None
            if gr is not None:
                leaf = self.leaves[i]
                gr = np.asarray(gr, dtype=leaf.dtype)
                if gr.shape != leaf.shape:
                    gr = np.broadcast_to(gr, leaf.shape).copy()
            out.append(gr)
        return tuple(out)


class _BoundGroup:
    """A fused group within one run: its kernels for the run's gradient pattern, its packed buffers,
    and the argument lists laid out once (the fixed inputs are the same arrays at every step)."""

    def __init__(self, run, group, env):
        k = self.k = group.kernels(run.graph, run.dtype, run.node_needs, run.rg, run.training)
        self.key = id(group)
        self.args = [k.prepare(v, env[v]) if k.cls[v] in ("V", "S") else None for v in k.inputs]
        self.rows_in = [(i, v) for i, v in enumerate(k.inputs) if k.cls[v] in ("R", "C")]
        self.widths = [k.n[v] for v in k.stored]
        self.bufs = [run.empty((run.N, n), run.dtype) for n in self.widths] if run.training else None
        self.outs = []
        for v in k.outputs:
            base, off = k.alias.get(v, (v, 0))
            from_stored = base in k.stored
            index = k.stored.index(base) if from_stored else k.inputs.index(base)
            self.outs.append((v, from_stored, index, (off, off + k.n[v]) if v in k.alias else None))
        self.bwd_in = [k.inputs.index(v) for v in k.bwd_inputs]
        self.seeds = [(v, k.n[v]) for v in k.seeds]
        self.grad_rows = [(v, k.n[v]) for v in k.grad_rows]
        self.accs = None

    def forward(self, run, env, rows, o, t):
        args = list(self.args)
        for i, v in self.rows_in:
            args[i] = env[v]
        if self.bufs is not None:
            stored = [buf[o:o + rows] for buf in self.bufs]
        else:
            stored = [np.empty((rows, n), run.dtype) for n in self.widths]
        self.k.fwd(rows, *args, *stored)
        for v, from_stored, index, cols in self.outs:
            array = stored[index] if from_stored else args[index]
            env[v] = array if cols is None else array[:, cols[0]:cols[1]]
        if run.training:
            run.group_in[self.key, t] = [args[i] for i in self.bwd_in]

    def backward(self, run, grad_of, rows, o, t, put, direct):
        gos = [grad_of(v) for v, _ in self.seeds]
        if all(gr is None for gr in gos):
            return  # no gradient reached the group at this step
        dtype = run.dtype
        gos = [np.zeros((rows, n), dtype) if gr is None else gr for (v, n), gr in zip(self.seeds, gos)]
        gis, puts = [], []
        for v, n in self.grad_rows:
            target = direct(v, t) if direct is not None else None
            if target is None:
                gis.append(np.empty((rows, n), dtype))
                puts.append(True)
            else:
                gis.append(target[0])
                puts.append(target[1])
        if self.accs is None:
            k = self.k
            self.accs = [np.zeros(k.n[v] if k.cls[v] == "V" else 1, dtype) for v in k.grad_acc]
        self.k.bwd(rows, *gos, *run.group_in[self.key, t], *[buf[o:o + rows] for buf in self.bufs], *gis,
                   *self.accs)
        for (v, _), gi, p in zip(self.grad_rows, gis, puts):
            if p:
                put(v, gi)
