"""Data: loaders, splits and batching. Heavy libraries load only inside the loaders that use them."""
from .batching import batches
from .download import ChecksumError, DatasetError, DatasetNotFoundError, data_root, fetch, sha256_file
from .ocr_digits import load_ocr_digits
from .synthetic import (
    ADDING_BASELINE_MSE, IGNORE_INDEX, adding_problem, copy_memory, copy_memory_baseline, delayed_recall,
    delayed_recall_baseline,
)
from .text import (
    CharVocab, TextCorpus, load_tiny_shakespeare, split_text, stream_batches, stream_chunks, stream_pairs,
)

__all__ = [
    "batches", "load_ocr_digits",
    "data_root", "fetch", "sha256_file", "DatasetError", "DatasetNotFoundError", "ChecksumError",
    "CharVocab", "TextCorpus", "load_tiny_shakespeare", "split_text",
    "stream_batches", "stream_pairs", "stream_chunks",
    "adding_problem", "copy_memory", "copy_memory_baseline", "delayed_recall", "delayed_recall_baseline",
    "ADDING_BASELINE_MSE", "IGNORE_INDEX",
]
