"""Conversions written with the builder for forwards that are not a chain of built-in modules.

* :func:`mean_over_lengths`: the mean of a zero-padded recurrent output over each row's own steps.
* :func:`spoken_digit_classifier`: the whole ``DigitClassifier`` of ``demos/spoken_digits.py``
  (recurrent layer, length-aware mean or last-state pooling, dropout, linear head). The class
  lives in a demo script, outside the package, so its conversion is here; the class calls it
  from its ``onnx_export`` method, or it is passed to export as
  ``exporters={DigitClassifier: spoken_digit_classifier}``.
"""
from __future__ import annotations


def mean_over_lengths(g, out, lengths):
    """sum_t out[t] / lengths: (T, N, F) zero past each row's length, lengths (N,) -> (N, F).

    The zeros past each length add nothing to the sum, so this is the mean over real steps only.
    """
    total = g.reduce_sum(out, [0])  # (N, F)
    steps = g.unsqueeze(g.cast(lengths, g.dtype(out)), [1])  # (N, 1)
    return g.op("Div", total, steps)


def last_states(g, h_n, directions: int):
    """The top layer's final h of each direction side by side: h_n (D*layers, N, H) -> (N, D*H)."""
    top = g.slice(h_n, [-directions], [2 ** 62], [0])  # (D, N, H)
    if directions == 1:
        return g.squeeze(top, [0])
    return g.reshape(g.transpose(top, [1, 0, 2]), [0, -1])  # (N, D*H), forward direction first


def spoken_digit_classifier(module, g, x, lengths):
    """DigitClassifier.forward as a graph: x (T, N, F), lengths (N,) -> logits (N, 10)."""
    out, state = g.module(module.rnn, x, lengths=lengths)  # out (T, N, D*H), zero past each length
    if module.pool == "mean":
        pooled = mean_over_lengths(g, out, lengths)
    else:
        h_n = state[0] if isinstance(state, tuple) else state
        pooled = last_states(g, h_n, module.directions)
    return g.module(module.head, g.module(module.drop, pooled))
