"""L-BFGS: a quasi-Newton method that builds its curvature model from the last few steps.

Unlike the other optimisers, L-BFGS updates all parameters together as one flat vector (the
concatenation of every parameter, in order) and calls the closure many times per ``step``; so
it overrides ``step`` rather than ``_update``. Its maths is in two pure functions:
``lbfgs_remember`` (keep a curvature pair) and ``lbfgs_direction`` (the two-loop recursion).
The optional line search lives in ``line_search.py``.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np

from ..autograd.grad_mode import enable_grad
from .line_search import strong_wolfe
from .optimizer import Optimizer, _check_nonnegative, _to_python

# A pair (s, y) is kept only when s . y exceeds this, so the model's inverse Hessian stays positive definite.
CURVATURE_EPS = 1e-10
LINE_SEARCHES = (None, "strong_wolfe")


def lbfgs_remember(
    y: np.ndarray,
    s: np.ndarray,
    old_dirs: list[np.ndarray],
    old_stps: list[np.ndarray],
    ro: list[float],
    H_diag: float,
    history_size: int,
) -> tuple[list[np.ndarray], list[np.ndarray], list[float], float]:
    """Add the curvature pair (s, y) to the history, dropping the oldest beyond ``history_size``.

    The pair is kept only if s . y > 1e-10 (the curvature condition); then
    ``rho = 1 / (s . y)`` and the initial inverse-Hessian scale becomes
    ``H_diag = (s . y) / (y . y)`` (Nocedal & Wright eq. 7.20). Otherwise nothing changes.

    Args:
        y : np.ndarray [shape=(n,)], the change of the flat gradient over the last step.
        s : np.ndarray [shape=(n,)], the last step (new flat parameters minus old).
        old_dirs : list of np.ndarray [shape=(n,)], past y's, oldest first ("dirs" in torch).
        old_stps : list of np.ndarray [shape=(n,)], past s's, oldest first.
        ro : list of float, the matching 1 / (s . y).
        H_diag : float, the current scale.  history_size : int >= 1.

    Returns:
        ``(old_dirs, old_stps, ro, H_diag)``: new lists (the inputs are not modified).
    """
    ys = y.dot(s)
    if not ys > CURVATURE_EPS:
        return list(old_dirs), list(old_stps), list(ro), H_diag
    drop = 1 if len(old_dirs) >= history_size else 0
    old_dirs = old_dirs[drop:] + [y]
    old_stps = old_stps[drop:] + [s]
    ro = ro[drop:] + [1.0 / ys]
    return old_dirs, old_stps, ro, ys / y.dot(y)


def lbfgs_direction(
    flat_grad: np.ndarray,
    old_dirs: list[np.ndarray],
    old_stps: list[np.ndarray],
    ro: list[float],
    H_diag: float,
) -> tuple[np.ndarray, list]:
    """The L-BFGS search direction d = -H g by the two-loop recursion (Nocedal & Wright alg. 7.4).

    H is the inverse-Hessian model made from the stored pairs (s_i, y_i), starting from
    ``H_diag * I``. Computed as PyTorch does, from q = -g (so the result is d, not H g)::

        q = -g
        for i = m-1 .. 0:  al_i = rho_i s_i . q ;  q = q - al_i y_i
        r = H_diag * q
        for i = 0 .. m-1:  be_i = rho_i y_i . r ;  r = r + (al_i - be_i) s_i
        d = r

    Args:
        flat_grad : np.ndarray [shape=(n,)], g.
        old_dirs, old_stps : lists of np.ndarray [shape=(n,)], the y's and s's, oldest first.
        ro : list of float, 1 / (s_i . y_i).  H_diag : float.

    Returns:
        ``(d, al)``: the direction (a new array of g's dtype) and the list of the m al_i.
    """
    num_old = len(old_dirs)
    al = [None] * num_old
    q = -flat_grad
    for i in range(num_old - 1, -1, -1):
        al[i] = old_stps[i].dot(q) * ro[i]
        q = q + (-al[i]) * old_dirs[i]
    r = q * H_diag
    for i in range(num_old):
        be_i = old_dirs[i].dot(r) * ro[i]
        r = r + (al[i] - be_i) * old_stps[i]
    return r, al


def _positive_int(label: str, value, whole_float_ok: bool = False) -> None:
    """Raise ``ValueError("Invalid <label>: ...")`` unless ``value`` is an int >= 1.

    ``whole_float_ok`` also lets through floats such as 25.0 (PyTorch only compares them).
    """
    whole = isinstance(value, (int, np.integer)) or (
        whole_float_ok and isinstance(value, (float, np.floating)) and float(value).is_integer())
    if isinstance(value, bool) or not whole or value < 1:
        raise ValueError(f"Invalid {label}: {value!r} (expected an int >= 1)")


class LBFGS(Optimizer):
    """L-BFGS (Liu & Nocedal, 1989), as ``torch.optim.LBFGS``: same steps, state and stopping rules.

    Each ``step(closure)`` runs up to ``max_iter`` iterations on the flat vector of all
    parameters. Iteration k takes the direction d = -H g from the last ``history_size`` curvature
    pairs (``lbfgs_direction``) and a step t: ``lr`` (the very first iteration uses
    ``min(1, 1 / sum|g|) * lr``), or, with ``line_search_fn="strong_wolfe"``, a step found by
    ``strong_wolfe`` starting from that guess. It stops early when max |g| <= tolerance_grad,
    when g . d > -tolerance_change, when max |t d| <= tolerance_change, when the loss changes
    by less than tolerance_change, or after ``max_eval`` closure calls.

    Args:
        params: iterable of Parameters; a single group (no per-parameter options).
        lr : float >= 0, step length or first trial step (default 1).
        max_iter : int >= 1, iterations per ``step`` (default 20).
        max_eval : int >= 1 or None, closure calls per ``step`` (default ``max_iter * 5 // 4``).
        tolerance_grad : float >= 0, first-order optimality tolerance (default 1e-7).
        tolerance_change : float >= 0, tolerance on changes of loss and parameters (default 1e-9).
        history_size : int >= 1, curvature pairs kept (default 100).
        line_search_fn : None or "strong_wolfe" (default None).

    State (held, as in PyTorch, under the first parameter): ``func_evals``, ``n_iter`` (ints);
    ``d``, ``prev_flat_grad`` (flat arrays); ``t``, ``H_diag``, ``prev_loss`` (floats);
    ``old_dirs``, ``old_stps`` (lists of flat arrays), ``ro`` (list of floats) and ``al``
    (list of ``history_size`` floats or None, the two-loop's scratch).
    """

    def __init__(self, params, lr: float = 1, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: str | None = None):
        _positive_int("max_iter value", max_iter, whole_float_ok=True)
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, history_size=history_size,
                        line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        self._params = self.param_groups[0]["params"]

    # ------------------------------------------------------------------ Optimizer hooks
    def _check_group(self, group):
        _check_nonnegative("learning rate", group["lr"])
        _positive_int("max_iter value", group["max_iter"], whole_float_ok=True)
        _positive_int("max_eval value", group["max_eval"], whole_float_ok=True)
        _check_nonnegative("tolerance_grad value", group["tolerance_grad"])
        _check_nonnegative("tolerance_change value", group["tolerance_change"])
        _positive_int("history_size value", group["history_size"])
        if group["line_search_fn"] not in LINE_SEARCHES:
            raise ValueError(
                f"Invalid line_search_fn: {group['line_search_fn']!r} (expected None or 'strong_wolfe')"
            )

    def add_param_group(self, param_group):
        if self.param_groups:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        super().add_param_group(param_group)

    # ------------------------------------------------------------------ the flat vector
    def _flat_dtype(self):
        return np.result_type(*[p._data.dtype for p in self._params])

    def _gather_flat_grad(self) -> np.ndarray:
        """All gradients as one vector (zeros for a parameter without one), in parameter order."""
        views = []
        for index, p in enumerate(self._params):
            if p._grad is None:
                views.append(np.zeros(p._data.size, dtype=p._data.dtype))
                continue
            if p._grad.shape != p._data.shape:
                raise ValueError(
                    f"LBFGS.step: params[{index}] has shape {p._data.shape} but its grad has shape {p._grad.shape}"
                )
            # Cast at the boundary: a float64 grad must not promote a float32 parameter.
            views.append(np.asarray(p._grad, dtype=p._data.dtype).reshape(-1))
        return np.concatenate(views).astype(self._flat_dtype(), copy=False)

    def _add_step(self, t, d: np.ndarray) -> None:
        """params += t * d, d cut into the parameters' shapes."""
        offset = 0
        for p in self._params:
            n = p._data.size
            np.add(p._data, t * d[offset:offset + n].reshape(p._data.shape), out=p._data)
            p._version += 1
            offset += n

    def _set_params(self, values: list[np.ndarray]) -> None:
        for p, value in zip(self._params, values):
            p._data[...] = value
            p._version += 1

    @staticmethod
    def _call(closure):
        with enable_grad():  # the closure runs backward, whatever the caller's grad mode
            return closure()

    # ------------------------------------------------------------------ the step
    def step(self, closure: Callable[[], Any]):
        """Run up to ``max_iter`` L-BFGS iterations; returns the loss the first closure call gave.

        Args:
            closure: callable that clears the gradients, recomputes the loss, calls
                ``backward()`` and returns the loss (run with grad mode on). Required.
        """
        if closure is None or not callable(closure):
            raise TypeError(
                "LBFGS.step needs a closure: a function that zeroes the gradients, recomputes "
                f"the loss, calls loss.backward() and returns the loss; got {closure!r}"
            )
        group = self.param_groups[0]
        lr = float(_to_python(group["lr"]))
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        history_size = group["history_size"]

        # L-BFGS has one state for all parameters; torch files it under the first parameter.
        state = self.state.setdefault(self._params[0], {})
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = self._call(closure)
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._gather_flat_grad()
        if np.abs(flat_grad).max() <= tolerance_grad:
            return orig_loss  # already optimal

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        H_diag, prev_flat_grad, prev_loss = state.get("H_diag"), state.get("prev_flat_grad"), state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1

            # ---- direction
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro, H_diag = [], [], [], 1
            else:
                old_dirs, old_stps, ro, H_diag = lbfgs_remember(
                    flat_grad - prev_flat_grad, d * t, old_dirs, old_stps, ro, H_diag, history_size)
                d, al = lbfgs_direction(flat_grad, old_dirs, old_stps, ro, H_diag)
                scratch = state.setdefault("al", [None] * history_size)
                scratch[:len(al)] = al
            prev_flat_grad = flat_grad.copy()
            prev_loss = loss

            # ---- step length
            t = min(1.0, 1.0 / np.abs(flat_grad).sum()) * lr if state["n_iter"] == 1 else lr
            gtd = flat_grad.dot(d)
            if gtd > -tolerance_change:
                break  # not a descent direction (to tolerance)

            ls_func_evals = 0
            if group["line_search_fn"] == "strong_wolfe":
                x_init = [p._data.copy() for p in self._params]

                def evaluate(step_length):
                    self._add_step(step_length, d)
                    value = float(self._call(closure))
                    grad = self._gather_flat_grad()
                    self._set_params(x_init)
                    return value, grad

                loss, flat_grad, t, ls_func_evals = strong_wolfe(
                    evaluate, d, t, loss, flat_grad, gtd, max_ls=max_eval - current_evals)
                self._add_step(t, d)
                opt_cond = np.abs(flat_grad).max() <= tolerance_grad
            else:
                self._add_step(t, d)
                opt_cond = False
                if n_iter != max_iter:
                    # Re-evaluate except after the last iteration (the next step() call will).
                    loss = float(self._call(closure))
                    flat_grad = self._gather_flat_grad()
                    opt_cond = np.abs(flat_grad).max() <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            # ---- stopping rules
            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if np.abs(d * t).max() <= tolerance_change:
                break  # the step no longer moves the parameters
            if abs(loss - prev_loss) < tolerance_change:
                break  # the loss no longer changes

        state.update(d=d, t=_scalar(t), old_dirs=old_dirs, old_stps=old_stps, ro=[_scalar(r) for r in ro],
                     H_diag=_scalar(H_diag), prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        if "al" in state:
            state["al"] = [None if a is None else _scalar(a) for a in state["al"]]
        return orig_loss

    # ------------------------------------------------------------------ state dicts
    def state_dict(self) -> dict[str, Any]:
        """As ``Optimizer.state_dict``, with the history lists copied too (later steps change them)."""
        sd = super().state_dict()
        sd["state"] = copy.deepcopy(sd["state"])
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict from ``state_dict()`` here or from torch's LBFGS (tensors turned to arrays).

        Flat arrays are cast to the parameters' dtype and must have as many elements as all
        parameters together; scalars become Python numbers. Every problem is reported at once.
        """
        missing = [k for k in ("state", "param_groups") if k not in state_dict]
        if missing:
            raise ValueError(f"load_state_dict: state dict lacks the key(s) {missing}")
        dtype, numel = self._flat_dtype(), sum(p._data.size for p in self._params)
        problems, loaded = [], {}
        for key, values in state_dict["state"].items():
            entry = {}
            for name, value in values.items():
                if name in ("d", "prev_flat_grad"):
                    entry[name] = _flat(value, dtype, numel, f"state[{key}][{name!r}]", problems)
                elif name in ("old_dirs", "old_stps"):
                    entry[name] = [_flat(v, dtype, numel, f"state[{key}][{name!r}][{i}]", problems)
                                   for i, v in enumerate(value)]
                elif name in ("ro", "al"):
                    entry[name] = [None if v is None else _scalar(v) for v in value]
                elif name in ("func_evals", "n_iter"):
                    entry[name] = int(_scalar(value))
                else:  # t, H_diag, prev_loss
                    entry[name] = None if value is None else _scalar(value)
            loaded[key] = entry
        if problems:
            raise ValueError("load_state_dict: " + "; ".join(problems))
        # Let the base class check and load the group; then file the state under the first parameter.
        super().load_state_dict({"state": {}, "param_groups": state_dict["param_groups"]})
        self._params = self.param_groups[0]["params"]
        saved_ids = [_to_python(i) for i in state_dict["param_groups"][0]["params"]]
        self.state = {}
        for key, entry in loaded.items():
            key = _to_python(key)
            if key not in saved_ids:
                raise ValueError(f"load_state_dict: state has an entry for parameter {key}, which no group lists")
            self.state[self._params[saved_ids.index(key)]] = entry


def _scalar(value):
    """A Python number from a Python number, a NumPy scalar or a 0-d array (or torch tensor)."""
    return _to_python(np.asarray(value))


def _flat(value, dtype, numel: int, label: str, problems: list) -> np.ndarray:
    array = np.array(value, dtype=dtype).reshape(-1)
    if array.size != numel:
        problems.append(f"{label} has {array.size} elements, the parameters have {numel}")
    return array


__all__ = ["LBFGS", "lbfgs_direction", "lbfgs_remember"]
