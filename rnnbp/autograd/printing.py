"""How a Tensor prints: PyTorch's format (``torch/_tensor_str.py``'s rules), and ``set_printoptions``.

Floats: all integral -> ``1.``; else fixed with ``precision`` decimals, or scientific when the
magnitudes span more than 1000x, exceed 1e8 or fall below 1e-4 (``sci_mode`` forces either way);
every element right-aligned to the widest. Integers and booleans as Python prints them. NumPy does
the brackets, line wrapping at ``linewidth`` and the ``...`` summary above ``threshold`` elements.
"""
from __future__ import annotations

import numpy as np

OPTIONS = {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80, "sci_mode": None}
_DEFAULTS = dict(OPTIONS)


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None,
                     sci_mode=None) -> None:
    """``torch.set_printoptions``: ``profile`` 'default', 'short' (2 digits) or 'full' (no summary)
    first, then the options given; ``sci_mode`` None lets the values decide."""
    if profile is not None:
        if profile not in ("default", "short", "full"):
            raise ValueError(f"set_printoptions: profile must be 'default', 'short' or 'full', got {profile!r}")
        OPTIONS.update(_DEFAULTS)
        if profile == "short":
            OPTIONS.update(precision=2, edgeitems=2)
        elif profile == "full":
            OPTIONS.update(threshold=np.inf)
    for name, value in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                        ("linewidth", linewidth)):
        if value is not None:
            OPTIONS[name] = value
    OPTIONS["sci_mode"] = sci_mode


def _float_format(data: np.ndarray):
    """One element -> its text, chosen from all the values as PyTorch chooses."""
    precision, sci_mode = OPTIONS["precision"], OPTIONS["sci_mode"]
    finite = data[np.isfinite(data)]
    nonzero = np.abs(finite[finite != 0]).astype(np.float64)
    integral = nonzero.size == 0 or bool(np.all(np.ceil(nonzero) == nonzero))
    big, small = (float(nonzero.max()), float(nonzero.min())) if nonzero.size else (0.0, 0.0)
    if integral and sci_mode is not True and big <= 1e8:
        return lambda v: f"{v:.0f}." if np.isfinite(v) else str(v)
    sci = sci_mode if sci_mode is not None else (nonzero.size > 0 and (big / small > 1000.0 or big > 1e8 or small < 1e-4))
    if sci:
        return lambda v: f"{v:.{precision}e}" if np.isfinite(v) else str(v)
    return lambda v: f"{v:.{precision}f}" if np.isfinite(v) else str(v)


def array_text(data: np.ndarray, prefix: str) -> str:
    """The body of ``tensor(...)``: ``data``'s elements formatted and aligned, NumPy's brackets."""
    if data.dtype.kind == "f":
        text = _float_format(data)
        flat = data.reshape(-1)
        width = max((len(text(float(v))) for v in flat), default=0)
        element = lambda v: text(float(v)).rjust(width)  # noqa: E731
    elif data.dtype.kind == "b":
        width = 5 if data.size and not data.all() else 4  # "False" sets the width, as in PyTorch
        element = lambda v: str(bool(v)).rjust(width)  # noqa: E731
    else:
        width = max((len(str(int(v))) for v in data.reshape(-1)), default=0)
        element = lambda v: str(int(v)).rjust(width)  # noqa: E731
    if data.ndim == 0:
        return element(data.item())
    text = np.array2string(data, separator=", ", prefix=prefix, formatter={"all": element},
                           threshold=OPTIONS["threshold"], edgeitems=OPTIONS["edgeitems"],
                           max_line_width=OPTIONS["linewidth"])
    return text.replace(", ..., ", ",  ..., ")  # PyTorch's elided run within a row reads " ..."
