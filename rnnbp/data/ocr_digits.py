"""scikit-learn's bundled 8x8 handwritten digits (offline), in a seeded train/validation/test split."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class DigitsSplit:
    """Images as float32 rows of 64 pixels scaled to [0, 1]; labels as int64 digits 0-9."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_ocr_digits(seed: int = 0, test_fraction: float = 0.2, val_fraction: float = 0.1) -> DigitsSplit:
    """The 1,797 digits of ``sklearn.datasets.load_digits``, split with a fixed seed.

    The test set is ``test_fraction`` of all images (the fixed 80/20 split for
    ``seed``); the validation set is ``val_fraction`` of the remaining training images.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)  # (1797, 64), pixel values 0..16
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    test, rest = order[:n_test], order[n_test:]
    n_val = int(round(val_fraction * len(rest)))
    val, train = rest[:n_val], rest[n_val:]
    return DigitsSplit(x[train], y[train], x[val], y[val], x[test], y[test])
