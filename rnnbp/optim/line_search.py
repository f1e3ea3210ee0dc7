"""Line search for LBFGS: a step length meeting the strong Wolfe conditions, by cubic interpolation.

The algorithm is that of ``torch.optim.LBFGS(line_search_fn="strong_wolfe")`` (itself a port of
the Lua torch ``lswolfe.lua`` from minFunc), step for step, so that rnnbp's L-BFGS takes the same
steps as PyTorch's: a bracketing phase that grows the step until an interval holding an
acceptable point is found, then a zoom phase that shrinks the interval (Nocedal & Wright,
"Numerical Optimization", 2nd ed., algorithms 3.5 and 3.6).
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None) -> float:
    """The minimiser of the cubic through two points with values and slopes, clipped to bounds.

    The cubic p has p(x1) = f1, p'(x1) = g1, p(x2) = f2, p'(x2) = g2 (Nocedal & Wright eq. 3.59).
    When it has no local minimum (d2 below is imaginary), the middle of the bounds is returned.

    Args:
        x1, x2 : float, the two abscissae (either order, distinct).
        f1, f2 : float, the function values there.
        g1, g2 : float, the derivatives there.
        bounds : (low, high) or None; None means the interval between x1 and x2.

    Returns:
        The step within ``bounds`` (a Python or NumPy float).
    """
    low, high = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    with np.errstate(divide="ignore", invalid="ignore"):
        # On a straight line (g1 = g2 = the secant slope) the division below is by zero: the
        # minimiser is +-inf, clipped to the bounds, as PyTorch's tensor arithmetic does it.
        dx = x1 - x2
        if isinstance(dx, np.generic):
            # Where PyTorch holds a 0-d tensor (steps made from gradients are NumPy scalars here,
            # exactly where they are tensors there), it divides a number by it as
            # number * (1 / tensor). Rounding the same way keeps the sign of d2_square, and so
            # the branch taken, identical on straight stretches of the line.
            secant = np.reciprocal(dx) * (3 * (f1 - f2))
        else:
            secant = 3 * (f1 - f2) / dx
        d1 = g1 + g2 - secant
        d2_square = d1 ** 2 - g1 * g2
        if d2_square < 0:
            return (low + high) / 2.0
        d2 = np.sqrt(d2_square)
        # Written from the larger abscissa, whichever of the two it is.
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(min_pos, low), high)


def strong_wolfe(
    evaluate: Callable[[float], tuple[float, np.ndarray]],
    d: np.ndarray,
    t: float,
    f: float,
    g: np.ndarray,
    gtd: float,
    *,
    c1: float = 1e-4,
    c2: float = 0.9,
    tolerance_change: float = 1e-9,
    max_ls: int = 25,
) -> tuple[float, np.ndarray, float, int]:
    """Search along ``d`` for a step t with phi(t) = f(x + t d) meeting the strong Wolfe conditions.

    Conditions (c1 < c2)::

        phi(t) <= phi(0) + c1 t phi'(0)          (sufficient decrease, Armijo)
        |phi'(t)| <= c2 |phi'(0)|               (curvature)

    Args:
        evaluate : callable t -> (loss, flat gradient) at x + t d; each call counts as one
            function evaluation.
        d : np.ndarray [shape=(n,)], the search direction (a descent direction: gtd < 0).
        t : float > 0, the first trial step.
        f : float, the loss at t = 0.  g : np.ndarray [shape=(n,)], the gradient at t = 0.
        gtd : float, phi'(0) = g . d.
        c1, c2 : float, the Wolfe constants. tolerance_change : float, stop zooming once the
            bracket, measured along d (times max |d|), is shorter than this.
        max_ls : int, at most this many evaluations after the first.

    Returns:
        ``(loss, flat_grad, t, n_evals)`` at the step chosen: the last point meeting both
        conditions, else the lowest point of the final bracket.
    """
    d_norm = np.abs(d).max()
    f_new, g_new = evaluate(t)
    n_evals = 1
    gtd_new = g_new.dot(d)

    # Bracketing: each point is [t, loss, grad, slope]; grow t until an interval holds a Wolfe point.
    prev = [0, f, g, gtd]
    bracket = None
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        new = [t, f_new, g_new, gtd_new]
        if f_new > f + c1 * t * gtd or (ls_iter > 1 and f_new >= prev[1]):
            bracket = [prev, new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, done = [new], True
            break
        if gtd_new >= 0:
            bracket = [prev, new]
            break
        # Extrapolate: somewhere between just past t and ten times t.
        t_next = cubic_interpolate(prev[0], prev[1], prev[3], t, f_new, gtd_new,
                                   bounds=(t + 0.01 * (t - prev[0]), t * 10))
        prev, t = new, t_next
        f_new, g_new = evaluate(t)
        n_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
    if bracket is None:  # out of evaluations: keep the better of the start and the last trial
        bracket = [[0, f, g, None], [t, f_new, g_new, None]]

    # Zoom: shrink the bracket around a Wolfe point; `low` indexes its lower-loss end.
    low, high = (0, 1) if bracket[0][1] <= bracket[-1][1] else (1, 0)
    insufficient_progress = False
    while not done and ls_iter < max_ls:
        (t_a, f_a, _, gtd_a), (t_b, f_b, _, gtd_b) = bracket
        if abs(t_b - t_a) * d_norm < tolerance_change:
            break
        t = cubic_interpolate(t_a, f_a, gtd_a, t_b, f_b, gtd_b)
        top, bottom = max(t_a, t_b), min(t_a, t_b)
        margin = 0.1 * (top - bottom)
        if min(top - t, t - bottom) < margin:
            # Too near an end: accept once, then (or if outside) move a tenth of the bracket in.
            if insufficient_progress or t >= top or t <= bottom:
                t = top - margin if abs(t - top) < abs(t - bottom) else bottom + margin
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False

        f_new, g_new = evaluate(t)
        n_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
        new = [t, f_new, g_new, gtd_new]
        if f_new > f + c1 * t * gtd or f_new >= bracket[low][1]:
            bracket[high] = new  # no sufficient decrease, or no better than the low end
            low, high = (0, 1) if bracket[0][1] <= bracket[1][1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high][0] - bracket[low][0]) >= 0:
                bracket[high] = bracket[low]  # the minimum lies between the new point and the old low
            bracket[low] = new

    t, f_new, g_new, _ = bracket[low]
    return f_new, g_new, t, n_evals


__all__ = ["cubic_interpolate", "strong_wolfe"]
