"""Data: loaders, splits and batching. Heavy libraries load only inside the loaders that use them."""
from .batching import batches
from .ocr_digits import load_ocr_digits

__all__ = ["batches", "load_ocr_digits"]
