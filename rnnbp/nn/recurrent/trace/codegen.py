"""The source of a fused group's two loops (see ``fuse``): statements, loop fusion, storage.

Each op of the group becomes one or more *statements*: a row statement (a scalar per
row: a layer norm's mean, its standard deviation, a parameter-gradient sum) or a
loop statement (one element of a row, inside ``for j in range(n)``). Consecutive
loop statements of the same width share one loop when that is safe: no statement
touches at another column what another one writes, unless the two column ranges
are disjoint (the gate blocks of one row: the widths are constants of the
generated code, so LLVM can prove that too and still vectorises). A row statement
that reads nothing the open loop writes moves above it, so a loop is not split by
a scalar that does not depend on it.

Then each value gets its storage: an argument array (inputs, and what leaves the
group or backward reads: *stored*), a scratch row reused from row to row, or,
when every access is in one loop at the same column, a scalar local (nothing
stored at all). Gradients are stored the same way. Placeholders in statements
(``@v12``: value 12 at this column, ``@c12``: its per-row scalar, ``@s12``: its
row as an array, ``@g12`` / ``@gc12``: the gradients) are resolved last.

Values are named V{id} (row arrays), v{id} (scalar locals), C{id} (per-row
scalars), G{id} / g{id} / GC{id} (gradients); arguments A (inputs), S (stored), GO
(output gradients), B (inputs backward reads), GI (input gradients), AC
(per-feature accumulators).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ....autograd.ops import elementwise as E
from ....autograd.ops import reduce as Rd
from ....autograd.ops import shape as Sh

_TOKEN = re.compile(r"@(gc|v|c|s|g)(\d+)")

UNARY = {
    # op: (forward expression, derivative contribution) in a (input), y (output), g (dL/dy)
    E.Neg: ("-{a}", "-{g}"),
    E.Exp: ("math.exp({a})", "{g} * {y}"),
    E.Log: ("math.log({a})", "{g} / {a}"),
    E.Sqrt: ("math.sqrt({a})", "{g} / (TWO * {y})"),
    E.Abs: ("abs({a})", "{g} * (ONE if {a} > ZERO else (-ONE if {a} < ZERO else ZERO))"),
    E.Tanh: ("tanh({a})", "{g} * (ONE - {y} * {y})"),
    E.Sigmoid: ("sigmoid({a})", "{g} * ({y} * (ONE - {y}))"),
    E.ReLU: ("({a} if not ({a} < ZERO) else ZERO)", "({g} if {y} > ZERO else ZERO)"),
    Sh.Clone: ("{a}", "{g}"),
}
BINARY = {
    E.Add: ("{a} + {b}", "{g}", "{g}"),
    E.Sub: ("{a} - {b}", "{g}", "-{g}"),
    E.Mul: ("{a} * {b}", "{g} * {b}", "{g} * {a}"),
    E.Div: ("{a} / {b}", "{g} / {b}", "-({g} / {b}) * {y}"),
}
REDUCE = (Rd.Sum, Rd.Mean)
# Ops whose outputs backward makes again rather than reading them back from memory.
CHEAP = (E.Add, E.Sub, E.Mul, E.Div, E.Neg, Sh.Clone, E.ReLU, E.LeakyReLU, E.Abs)


@dataclass
class St:
    """One statement. ``target``: what it writes (see ``Gen._target``); ``expr`` with placeholders."""

    row: bool
    n: int
    target: tuple
    expr: str
    reads: list = field(default_factory=list)    # (space, base, offset) after alias resolution
    writes: list = field(default_factory=list)


class _Loop:
    def __init__(self, n):
        self.n, self.pre, self.body = n, [], []
        self.reads, self.writes = set(), set()   # (space, base, offset)


class Gen:
    """Forward and backward source of one FusedGroup for one dtype and gradient pattern."""

    def __init__(self, group, graph, dtype, node_needs, rg, training, value_class, width, col_slice):
        self.group, self.graph, self.dtype = group, graph, np.dtype(dtype)
        self.values = graph.values
        self.needs = {nid: node_needs[nid] for nid in group.nodes}
        self.rg, self.training = rg, training
        self.cls, self.n, self.alias = {}, {}, {}
        self.produced = set()
        self.inputs = list(group.inputs)
        self.index_in = {v: k for k, v in enumerate(self.inputs)}
        for v in self.inputs:
            self.cls[v] = value_class(self.values[v], self.dtype)
            self.n[v] = width(self.values[v]) if self.cls[v] in ("R", "V") else 1
        for nid in group.nodes:
            node = graph.nodes[nid]
            for o in node.outputs:
                self.produced.add(o)
                self.cls[o] = value_class(self.values[o], self.dtype)
                self.n[o] = width(self.values[o]) if self.cls[o] == "R" else 1
            if node.op is Sh.Split:
                off = 0
                for size, o in zip(node.kwargs["sizes"], node.outputs):
                    self.alias[o] = (node.inputs[0], off)
                    off += int(size)
            elif node.op is Sh.GetItem:
                start, _ = col_slice(node.kwargs["index"], self.n[node.inputs[0]])
                self.alias[node.outputs[0]] = (node.inputs[0], start)
        for v in list(self.alias):  # chains of aliases resolve to the first value that is not one
            base, off = self.alias[v]
            while base in self.alias:
                b2, o2 = self.alias[base]
                base, off = b2, off + o2
            self.alias[v] = (base, off)
        self.seeds = [v for v in group.outputs if rg[v]]
        self.has_grad, self.acc_order, self.zeroed, self.n_tmp = set(), [], set(), 0

    def root(self, v):
        return self.alias.get(v, (v, 0))

    # ------------------------------------------------------------------ operands
    def operand(self, v):
        """Placeholder (R, C) or direct name (V, S) of value ``v`` at column j."""
        c = self.cls[v]
        if c == "R":
            return f"@v{v}"
        if c == "C":
            return f"@c{v}"
        if c == "V":
            return f"A{self.index_in[v]}[j]"
        return f"SC{self.index_in[v]}"

    def grad_of(self, y):
        return f"@g{y}" if self.cls[y] == "R" else f"@gc{y}"

    # ------------------------------------------------------------------ forward statements
    def forward_statements(self):
        out = []
        for nid in self.group.nodes:
            node = self.graph.nodes[nid]
            op, ins = node.op, node.inputs
            if op in (Sh.Split, Sh.GetItem):
                continue
            y = node.outputs[0]
            if op in UNARY:
                expr = UNARY[op][0].format(a=self.operand(ins[0]))
            elif op is E.LeakyReLU:
                a = self.operand(ins[0])
                expr = f"({a} if {a} > ZERO else {a} * SL{nid})"
            elif op in BINARY:
                expr = BINARY[op][0].format(a=self.operand(ins[0]), b=self.operand(ins[1]))
            elif op is E.Pow:
                a = self.operand(ins[0])
                p = self.exponent(nid)
                expr = {2.0: f"{a} * {a}", 1.0: f"{a}", 0.5: f"math.sqrt({a})", -1.0: f"ONE / {a}",
                        0.0: "ONE"}.get(p, f"{a} ** P{nid}")
            elif op in REDUCE:
                expr = f"_sum(@s{ins[0]})" + ("" if op is Rd.Sum else f" / NM{nid}")
                out.append(St(True, 0, ("c", y), expr))
                continue
            elif op is Sh.Cat:
                off = 0
                for v in ins:
                    out.append(St(False, self.n[v], ("v", y, off), self.operand(v)))
                    off += self.n[v]
                continue
            else:  # pragma: no cover - fuse.fusible admits nothing else
                raise AssertionError(op)
            if self.cls[y] == "R":
                out.append(St(False, self.n[y], ("v", y, 0), expr))
            else:
                out.append(St(True, 0, ("c", y), expr))
        return out

    def exponent(self, nid) -> float:
        return float(np.asarray(self.values[self.graph.nodes[nid].inputs[1]].data))

    # ------------------------------------------------------------------ backward statements
    def backward_statements(self):
        """The derivative statements in emission order; also sets ``refs`` (values they read) and
        ``has_grad`` (values whose gradient they make)."""
        graph = self.graph
        out = []
        has_grad = self.has_grad = set()
        assigned = set()
        tmp = [0]

        def op_for(v):
            if v in self.alias or v in self.zeroed:
                return "+="
            if v in assigned:
                return "+="
            assigned.add(v)
            return "="

        # Which bases receive gradients through aliases (their rows start at zero): computed first.
        self.zeroed = set()
        for nid in self.group.nodes:
            node = graph.nodes[nid]
            if node.op in (Sh.Split, Sh.GetItem) and self.needs[nid][0] and self.rg[node.inputs[0]]:
                self.zeroed.add(self.root(node.inputs[0])[0])

        def contribute(t, expr, out_cls, n, nid=None):
            """Add ``expr`` (the contribution at column j, or per row when out_cls is C) to t's gradient."""
            c = self.cls[t]
            has_grad.add(t)
            if c == "R":
                out.append(St(False, self.n[t], ("g", t, op_for(t)), expr))
            elif c == "C":
                if out_cls == "R":
                    m = tmp[0]
                    tmp[0] += 1
                    out.append(St(False, n, ("tmp", m), expr))
                    out.append(St(True, 0, ("gc", t, op_for(t)), f"_sum(TMP{m}[:{n}])", reads=[("tmp", m, "row")]))
                else:
                    out.append(St(True, 0, ("gc", t, op_for(t)), expr))
            elif c == "V":
                out.append(St(False, n, ("acc", self.grad_acc_index(t)), expr))
            else:
                if out_cls == "R":
                    m = tmp[0]
                    tmp[0] += 1
                    out.append(St(False, n, ("tmp", m), expr))
                    out.append(St(True, 0, ("acc0", self.grad_acc_index(t)), f"_sum(TMP{m}[:{n}])",
                                  reads=[("tmp", m, "row")]))
                else:
                    out.append(St(True, 0, ("acc0", self.grad_acc_index(t)), expr))

        self.acc_order = []
        for v in self.seeds:
            k = self.group.outputs.index(v)
            if self.cls[v] == "R":
                contribute(v, f"GO{k}[i, j]", "R", self.n[v])
            else:
                contribute(v, f"GO{k}[i, 0]", "C", 1)
        for nid in reversed(self.group.nodes):
            node = graph.nodes[nid]
            needs = self.needs[nid]
            op, ins = node.op, node.inputs
            if op in (Sh.Split, Sh.GetItem):
                if needs[0] and any(o in has_grad for o in node.outputs):
                    has_grad.add(ins[0])
                continue
            y = node.outputs[0]
            if y not in has_grad:
                continue
            g, cy, ny = self.grad_of(y), self.cls[y], self.n[y]
            ok = [needs[k] and self.rg[v] for k, v in enumerate(ins)]
            if op in UNARY or op is E.LeakyReLU:
                if not ok[0]:
                    continue
                if op is E.LeakyReLU:
                    a = self.operand(ins[0])
                    expr = f"({g} if {a} > ZERO else {g} * SL{nid})"
                else:
                    expr = UNARY[op][1].format(a=self.operand(ins[0]), y=self.operand(y), g=g)
                contribute(ins[0], expr, cy, ny)
            elif op in BINARY:
                for k, template in ((0, BINARY[op][1]), (1, BINARY[op][2])):
                    if ok[k]:
                        expr = template.format(a=self.operand(ins[0]), b=self.operand(ins[1]), y=self.operand(y),
                                               g=g)
                        contribute(ins[k], expr, cy, ny)
            elif op is E.Pow:
                if not ok[0]:
                    continue
                p, a = self.exponent(nid), self.operand(ins[0])
                expr = {0.0: "ZERO", 1.0: f"({g} * P{nid})", 2.0: f"({g} * P{nid}) * {a}"}.get(
                    p, f"({g} * P{nid}) * ({a} ** PM{nid})")
                contribute(ins[0], expr, cy, ny)
            elif op in REDUCE:
                if not ok[0]:
                    continue
                if op is Rd.Mean:
                    out.append(St(True, 0, ("gm", nid), f"@gc{y} / NM{nid}"))
                    contribute(ins[0], f"GM{nid}", "R", self.n[ins[0]])
                else:
                    contribute(ins[0], f"@gc{y}", "R", self.n[ins[0]])
            elif op is Sh.Cat:
                off = 0
                for k, v in enumerate(ins):
                    if ok[k]:
                        contribute(v, f"@g{y}<{off}>", "R", self.n[v])
                    off += self.n[v]
        for k, v in enumerate(self.inputs):
            if v in has_grad and self.rg[v] and self.cls[v] == "C":
                out.append(St(True, 0, ("raw", f"GI{self.grad_rows_index(v)}[i, 0]"), f"@gc{v}"))
        self.n_tmp = tmp[0]
        return out

    def grad_acc_index(self, v):
        if v not in self.acc_order:
            self.acc_order.append(v)
        return self.acc_order.index(v)

    def grad_rows_index(self, v):
        return [u for u in self.inputs if u in self.has_grad and self.rg[u] and self.cls[u] in ("R", "C")].index(v)

    # ------------------------------------------------------------------ accesses and scheduling
    def _accesses(self, st, backward):
        """Fill st.reads and st.writes with (space, base, offset) from its placeholders and target."""
        reads = list(st.reads)
        for m in _TOKEN.finditer(st.expr):
            kind, v = m.group(1), int(m.group(2))
            base, off = self.root(v)
            tail = st.expr[m.end():m.end() + 1]
            if kind == "v":
                reads.append(("v", base, off))
            elif kind == "c":
                reads.append(("v", base, "col") if v in self.alias else ("c", v, 0))
            elif kind == "s":
                reads.append(("v", base, "row"))
            elif kind == "g":
                extra = 0
                if tail == "<":
                    extra = int(st.expr[m.end() + 1:st.expr.index(">", m.end())])
                reads.append(("g", base, off + extra))
            else:  # gc
                reads.append(("g", base, "col") if v in self.alias else ("gc", v, 0))
        t = st.target
        writes = []
        if t[0] == "v":
            writes.append(("v", t[1], t[2]))
        elif t[0] == "c":
            writes.append(("c", t[1], 0))
        elif t[0] == "g":
            base, off = self.root(t[1])
            writes.append(("g", base, off))
            if t[2] == "+=":
                reads.append(("g", base, off))
        elif t[0] == "gc":
            if t[1] in self.alias:
                base, off = self.root(t[1])
                writes.append(("g", base, "col"))
            else:
                writes.append(("gc", t[1], 0))
        elif t[0] in ("tmp", "acc", "acc0", "gm"):
            writes.append((t[0], t[1], 0 if t[0] != "acc0" else "col"))
        st.reads, st.writes = reads, writes

    @staticmethod
    def _conflict(access, loop_accesses, n):
        """Whether ``access`` (space, base, column offset) in a loop of width n would touch, at another
        column, what the loop's other statements touch: offsets n or more apart address disjoint
        column ranges (the widths are constants of the generated code, so LLVM sees that too)."""
        space, base, off = access
        for s2, b2, o2 in loop_accesses:
            if s2 != space or b2 != base or o2 == off and off not in ("row", "col"):
                continue
            if off in ("row", "col") or o2 in ("row", "col") or abs(o2 - off) < n:
                return True
        return False

    def schedule(self, stmts):
        """Loops and row statements in emission order: a list of _Loop and St."""
        out, cur = [], None

        def close():
            nonlocal cur
            if cur is not None:
                out.append(cur)
                cur = None

        for st in stmts:
            if st.row:
                touched = cur is not None and (any((s, b) in {(x, y) for x, y, _ in cur.writes}
                                                   for s, b, _ in st.reads) or
                                               any((s, b) in {(x, y) for x, y, _ in cur.writes | cur.reads}
                                                   for s, b, _ in st.writes))
                if cur is not None and not touched:
                    cur.pre.append(st)
                else:
                    close()
                    out.append(st)
                continue
            if cur is not None and cur.n == st.n and not any(self._conflict(a, cur.writes, st.n) for a in st.reads) \
                    and not any(self._conflict(a, cur.writes | cur.reads, st.n) for a in st.writes):
                cur.body.append(st)
            else:
                close()
                cur = _Loop(st.n)
                cur.body.append(st)
            cur.reads.update(st.reads)
            cur.writes.update(st.writes)
        close()
        return out

    def locals_of(self, items, space, candidates):
        """The candidates whose every access (in ``space``) is in one loop at column offset 0."""
        where = {}
        bad = set()
        for k, item in enumerate(items):
            stmts = item.body if isinstance(item, _Loop) else [item]
            for st in (item.pre if isinstance(item, _Loop) else []):
                for s, b, o in st.reads + st.writes:
                    if s == space:
                        bad.add(b)
            for st in stmts:
                for s, b, o in st.reads + st.writes:
                    if s != space:
                        continue
                    if not isinstance(item, _Loop) or o != 0:
                        bad.add(b)
                    elif where.setdefault(b, k) != k:
                        bad.add(b)
        return {v for v in candidates if v in where and v not in bad}

    # ------------------------------------------------------------------ resolving placeholders
    def _resolve(self, expr, vlocal, glocal):
        def sub(m):
            kind, v = m.group(1), int(m.group(2))
            base, off = self.root(v)
            if kind == "v":
                if base in vlocal:
                    return f"v{base}"
                return f"V{base}[{off} + j]" if off else f"V{base}[j]"
            if kind == "c":
                return f"V{base}[{off}]" if v in self.alias else f"C{v}"
            if kind == "s":
                return f"V{base}[{off}:{off + self.n[v]}]" if v in self.alias else f"V{v}"
            if kind == "g":
                if base in glocal:
                    return f"g{base}"
                return f"G{base}[{off} + j]" if off else f"G{base}[j]"
            return f"G{base}[{off}]" if v in self.alias else f"GC{v}"

        out = _TOKEN.sub(sub, expr)
        # Cat's gradient reads a column offset: @g12<off> -> the offset added to j
        return re.sub(r"G(\d+)\[j\]<(\d+)>", lambda m: f"G{m.group(1)}[{m.group(2)} + j]",
                      re.sub(r"G(\d+)\[(\d+) \+ j\]<(\d+)>",
                             lambda m: f"G{m.group(1)}[{int(m.group(2)) + int(m.group(3))} + j]",
                             re.sub(r"g(\d+)<0>", r"g\1", out)))

    def _emit(self, st, vlocal, glocal, stored, indent):
        expr = self._resolve(st.expr, vlocal, glocal)
        t = st.target
        kind = t[0]
        if kind == "v":
            y, off = t[1], t[2]
            if y in vlocal:
                return [f"{indent}v{y} = {expr}"]
            return [f"{indent}V{y}[{off} + j] = {expr}" if off else f"{indent}V{y}[j] = {expr}"]
        if kind == "c":
            lines = [f"{indent}C{t[1]} = {expr}"]
            if t[1] in stored:
                lines.append(f"{indent}S{stored.index(t[1])}[i, 0] = C{t[1]}")
            return lines
        if kind == "g":
            base, off = self.root(t[1])
            op = t[2]
            if base in glocal:
                return [f"{indent}g{base} {op} {expr}"]
            return [f"{indent}G{base}[{off} + j] {op} {expr}" if off else f"{indent}G{base}[j] {op} {expr}"]
        if kind == "gc":
            if t[1] in self.alias:
                base, off = self.root(t[1])
                return [f"{indent}G{base}[{off}] += {expr}"]
            return [f"{indent}GC{t[1]} {t[2]} {expr}"]
        if kind == "tmp":
            return [f"{indent}TMP{t[1]}[j] = {expr}"]
        if kind == "acc":
            return [f"{indent}AC{t[1]}[j] += {expr}"]
        if kind == "acc0":
            return [f"{indent}AC{t[1]}[0] += {expr}"]
        if kind == "gm":
            return [f"{indent}GM{t[1]} = {expr}"]
        return [f"{indent}{t[1]} = {expr}"]  # raw

    def _body(self, items, vlocal, glocal, stored):
        lines = []
        for item in items:
            if isinstance(item, _Loop):
                for st in item.pre:
                    lines.extend(self._emit(st, vlocal, glocal, stored, "        "))
                lines.append(f"        for j in range({item.n}):")
                for st in item.body:
                    lines.extend(self._emit(st, vlocal, glocal, stored, "            "))
            else:
                lines.extend(self._emit(item, vlocal, glocal, stored, "        "))
        return lines

    def constants(self, lines):
        for nid in self.group.nodes:
            node = self.graph.nodes[nid]
            if node.op is E.LeakyReLU:
                lines.append(f"    SL{nid} = DT({float(node.kwargs.get('negative_slope', 0.01))!r})")
            elif node.op is E.Pow:
                p = self.exponent(nid)
                lines.append(f"    P{nid} = DT({p!r})")
                lines.append(f"    PM{nid} = DT({p - 1.0!r})")
            elif node.op is Rd.Mean:
                lines.append(f"    NM{nid} = DT({float(self.n[node.inputs[0]])!r})")

    # ------------------------------------------------------------------ the two functions
    def build(self):
        """Decide storage, then make ``forward_source`` and ``backward_source`` (None when not training)."""
        fwd = self.forward_statements()
        bwd = self.backward_statements() if self.training else []
        for st in fwd:
            self._accesses(st, False)
        for st in bwd:
            self._accesses(st, True)
        # What backward reads of the values made here is stored, or recomputed from what is.
        read = {b for st in bwd for s, b, _ in st.reads if s in ("v", "c")}
        recompute, store = self._storage(read & self.produced)
        if recompute:
            bwd = [st for st in fwd if st.target[0] == "v" and st.target[1] in recompute] + bwd
        self.recompute = recompute
        self.stored = sorted(store)
        read_in_bwd = {b for st in bwd for s, b, _ in st.reads if s in ("v", "c")}
        for st in bwd:  # per-feature vectors and scalars named directly (A{k}[j], SC{k})
            for m in re.finditer(r"\b(A|SC)(\d+)\b", st.expr):
                read_in_bwd.add(self.inputs[int(m.group(2))])
        self.bwd_inputs = [v for v in self.inputs if v in read_in_bwd]
        self.grad_rows = [v for v in self.inputs if v in self.has_grad and self.rg[v] and self.cls[v] in ("R", "C")]
        self.grad_acc = list(self.acc_order)

        f_items = self.schedule(fwd)
        scratch_v = [v for v in sorted(self.produced) if self.cls[v] == "R" and v not in self.alias
                     and v not in self.stored]
        vlocal = self.locals_of(f_items, "v", scratch_v)
        self.forward_source = self._forward_source(f_items, vlocal, [v for v in scratch_v if v not in vlocal])
        self.backward_source = None
        if self.training:
            b_items = self.schedule(bwd)
            cands = [v for v in sorted(self.has_grad & self.produced) if self.cls[v] == "R" and v not in self.alias
                     and v not in self.zeroed]
            glocal = self.locals_of(b_items, "g", cands)
            again = sorted(v for v in recompute if self.cls[v] == "R")
            vlocal_b = self.locals_of(b_items, "v", again)
            self.backward_source = self._backward_source(b_items, glocal, cands, vlocal_b,
                                                         [v for v in again if v not in vlocal_b])

    def _storage(self, read):
        """(recompute, store): of the values made here that backward reads (``read``), those an
        inexpensive op makes from values backward has anyway are made again there; the rest, every
        per-row scalar and what leaves the group are stored."""
        producer = {o: nid for nid in self.group.nodes for o in self.graph.nodes[nid].outputs}
        store = {self.root(v)[0] for v in self.group.outputs} & self.produced
        pending = {self.root(v)[0] for v in read}
        recompute = set()
        for nid in reversed(self.group.nodes):
            node = self.graph.nodes[nid]
            for y in node.outputs:
                if y not in pending or y in self.alias or y in store:
                    continue
                if self.cls[y] == "R" and node.op in CHEAP:
                    recompute.add(y)
                    pending.update(self.root(u)[0] for u in node.inputs if self.root(u)[0] in self.produced)
                else:
                    store.add(y)
        assert all(producer.get(v) is not None for v in store)
        return recompute, {v for v in store if v not in self.alias}

    def _forward_source(self, items, vlocal, scratch):
        ins, stored = self.inputs, self.stored
        args = ["rows"] + [f"A{k}" for k in range(len(ins))] + [f"S{k}" for k in range(len(stored))]
        lines = [f"def forward({', '.join(args)}):"]
        self.constants(lines)
        for k, v in enumerate(ins):
            if self.cls[v] == "S":
                lines.append(f"    SC{k} = A{k}[0]")
        for v in scratch:
            lines.append(f"    V{v} = np.empty({self.n[v]}, DT)")
        lines.append("    for i in range(rows):")
        for k, v in enumerate(ins):
            if self.cls[v] == "R":
                lines.append(f"        V{v} = A{k}[i]")
            elif self.cls[v] == "C":
                lines.append(f"        C{v} = A{k}[i, 0]")
        for k, v in enumerate(stored):
            if self.cls[v] == "R":
                lines.append(f"        V{v} = S{k}[i]")
        lines.extend(self._body(items, vlocal, set(), stored))
        lines.append("        pass")
        return "\n".join(lines) + "\n"

    def _backward_source(self, items, glocal, cands, vlocal, scratch):
        seeds, bwd_in, stored = self.seeds, self.bwd_inputs, self.stored
        args = (["rows"] + [f"GO{self.group.outputs.index(v)}" for v in seeds]
                + [f"B{k}" for k in range(len(bwd_in))] + [f"S{k}" for k in range(len(stored))]
                + [f"GI{k}" for k in range(len(self.grad_rows))] + [f"AC{k}" for k in range(len(self.grad_acc))])
        lines = [f"def backward({', '.join(args)}):"]
        self.constants(lines)
        for k, v in enumerate(bwd_in):
            if self.cls[v] == "V":
                lines.append(f"    A{self.index_in[v]} = B{k}")
            elif self.cls[v] == "S":
                lines.append(f"    SC{self.index_in[v]} = B{k}[0]")
        for v in cands:
            if v not in glocal:
                lines.append(f"    G{v} = np.empty({self.n[v]}, DT)")
        for v in sorted(self.zeroed):
            if v in self.produced and self.cls[v] == "R":
                lines.append(f"    G{v} = np.empty({self.n[v]}, DT)")
        for v in scratch:
            lines.append(f"    V{v} = np.empty({self.n[v]}, DT)")
        widest = max([self.n[v] for v in self.cls if self.cls[v] == "R"] + [1])
        for m in range(self.n_tmp):
            lines.append(f"    TMP{m} = np.empty({widest}, DT)")
        lines.append("    for i in range(rows):")
        for k, v in enumerate(bwd_in):
            if self.cls[v] == "R":
                lines.append(f"        V{v} = B{k}[i]")
            elif self.cls[v] == "C":
                lines.append(f"        C{v} = B{k}[i, 0]")
        for k, v in enumerate(stored):
            if self.cls[v] == "R":
                lines.append(f"        V{v} = S{k}[i]")
            else:
                lines.append(f"        C{v} = S{k}[i, 0]")
        for k, v in enumerate(self.grad_rows):
            if self.cls[v] == "R":
                lines.append(f"        G{v} = GI{k}[i]")
        for v in sorted(self.zeroed):
            if self.cls[v] == "R" and (v in self.produced or v in self.grad_rows):
                lines.append(f"        G{v}[:] = ZERO")
        lines.extend(self._body(items, vlocal, glocal, stored))
        lines.append("        pass")
        return "\n".join(lines) + "\n"
