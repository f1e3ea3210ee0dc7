"""Data: loaders, splits and batching. Heavy libraries load only inside the loaders that use them."""
from .augment import SpecAugment, SpecAugmentMasks, add_noise, spec_augment, speed_perturb
from .batching import batches
from .buckets import Features, bucket_batches, pad_sequences, padded_batches
from .connected_digits import ConnectedDigits, ConnectedUtterance, UtterancePlan, trim_silence
from .download import ChecksumError, DatasetError, DatasetNotFoundError, data_root, fetch, sha256_file
from .expressions import (
    EXPRESSION_TOKENS, OPERATORS, ExpressionSet, ExpressionSplits, evaluate_expression, expression_depth,
    expression_set, expression_size, expression_splits, expression_tokens, in_validation_part, random_expression,
)
from .features import (
    AudioFileError, FeatureConfig, Normalizer, compute_features, extract_features, feature_cache_path,
    file_features, read_audio,
)
from .fsdd import FSDD, Recording, fsdd_manifest, load_fsdd, parse_recording_name
from .normalize import SpeakerNormalizer, normalize_by_speaker
from .ocr_digits import load_ocr_digits
from .synthetic import (
    ADDING_BASELINE_MSE, IGNORE_INDEX, adding_problem, copy_memory, copy_memory_baseline, delayed_recall,
    delayed_recall_baseline,
)
from .streaming import StreamingFeatures
from .text import (
    CharVocab, TextCorpus, load_tiny_shakespeare, split_text, stream_batches, stream_chunks, stream_pairs,
)

__all__ = [
    "ConnectedDigits", "ConnectedUtterance", "UtterancePlan", "trim_silence",
    "SpecAugment", "SpecAugmentMasks", "spec_augment", "speed_perturb", "add_noise",
    "SpeakerNormalizer", "normalize_by_speaker", "StreamingFeatures",
    "batches", "load_ocr_digits",
    "data_root", "fetch", "sha256_file", "DatasetError", "DatasetNotFoundError", "ChecksumError",
    "CharVocab", "TextCorpus", "load_tiny_shakespeare", "split_text",
    "stream_batches", "stream_pairs", "stream_chunks",
    "FSDD", "Recording", "load_fsdd", "fsdd_manifest", "parse_recording_name",
    "FeatureConfig", "Features", "Normalizer", "AudioFileError", "read_audio", "compute_features", "file_features",
    "extract_features", "feature_cache_path",
    "bucket_batches", "pad_sequences", "padded_batches",
    "adding_problem", "copy_memory", "copy_memory_baseline", "delayed_recall", "delayed_recall_baseline",
    "ADDING_BASELINE_MSE", "IGNORE_INDEX",
    "OPERATORS", "EXPRESSION_TOKENS", "ExpressionSet", "ExpressionSplits", "random_expression", "evaluate_expression",
    "expression_depth", "expression_size", "expression_tokens", "expression_set", "expression_splits",
    "in_validation_part",
]
