"""rnnbp.data.text: the character vocabulary, tiny-shakespeare and its split, time-major streams."""
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

import rnnbp
from rnnbp.data import (
    CharVocab, TextCorpus, load_tiny_shakespeare, split_text, stream_batches, stream_chunks, stream_pairs,
)
from rnnbp.data.text import TINY_SHAKESPEARE_CHARS, TINY_SHAKESPEARE_SHA256


def no_network(url, output_file, pooch):
    raise AssertionError(f"tests must not download; asked for {url}")


@pytest.fixture(scope="module")
def shakespeare_root():
    """The data folder named by RNNBP_DATA, when it holds tiny-shakespeare (CI: ../shared/data)."""
    root = os.environ.get("RNNBP_DATA")
    if not root:
        pytest.skip("RNNBP_DATA is not set (e.g. RNNBP_DATA=../shared/data); the real corpus is needed")
    if not (Path(root) / "tinyshakespeare" / "input.txt").is_file():
        pytest.skip(f"RNNBP_DATA={root} holds no tinyshakespeare/input.txt")
    return root


# ------------------------------------------------------------------ vocab
def test_vocab_is_sorted_and_round_trips():
    text = "hello, world!\nHELLO"
    vocab = CharVocab.from_text(text)
    assert vocab.chars == "".join(sorted(set(text))) and len(vocab) == len(set(text))
    ids = vocab.encode(text)
    assert ids.dtype == np.int64 and ids.shape == (len(text),)
    assert [vocab.chars[i] for i in ids] == list(text)
    assert vocab.decode(ids) == text
    assert vocab.decode(list(ids)) == text
    assert vocab.encode("").shape == (0,) and vocab.decode(np.zeros(0, dtype=np.int64)) == ""


def test_vocab_handles_characters_beyond_ascii():
    text = "naïve café — ✓ 𝄞"
    vocab = CharVocab(text)
    assert vocab.decode(vocab.encode(text)) == text
    assert "é" in vocab and "x" not in vocab and "ab" not in vocab


def test_vocab_ids_depend_only_on_the_character_set():
    assert CharVocab("cab") == CharVocab(["b", "ac", "a"])
    assert CharVocab("cab").encode("abc").tolist() == [0, 1, 2]


def test_encode_names_every_unknown_character():
    vocab = CharVocab("abc")
    with pytest.raises(ValueError, match=r"2 character\(s\) not in the vocabulary: 'dz' \(first at index 1\)"):
        vocab.encode("adcz")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("~")  # above every code point of the vocabulary


@pytest.mark.parametrize("ids, match", [
    ([0, 3], r"in \[0, 3\), got \[3\]"),
    ([-1], r"got \[-1\]"),
    ([[0, 1]], "1-D"),
    ([0.0, 1.0], "integer ids"),
])
def test_decode_rejects_bad_ids(ids, match):
    with pytest.raises(ValueError, match=match):
        CharVocab("abc").decode(np.array(ids))


def test_empty_vocab_is_an_error():
    with pytest.raises(ValueError, match="at least one character"):
        CharVocab("")


def test_vocab_survives_a_checkpoint(tmp_path):
    vocab = CharVocab("To be, or not to be:\nthat is the question.")
    rnnbp.save({"vocab": vocab.state_dict(), "step": 3}, tmp_path / "ckpt.npz")
    loaded = CharVocab.from_state_dict(rnnbp.load(tmp_path / "ckpt.npz")["vocab"])
    assert loaded == vocab
    assert loaded.encode("to be").tolist() == vocab.encode("to be").tolist()


@pytest.mark.parametrize("state", [{"chars": "ba"}, {"chars": "aab"}, {"chars": ["a"]}, {}, "ab"])
def test_from_state_dict_rejects_what_would_change_ids(state):
    with pytest.raises(ValueError, match="CharVocab.from_state_dict"):
        CharVocab.from_state_dict(state)


# ------------------------------------------------------------------ split
def test_split_is_contiguous_90_10():
    text = "".join(chr(ord("a") + i % 26) for i in range(1005))
    train, val = split_text(text)
    assert (len(train), len(val)) == (904, 101) and train + val == text
    ids = np.arange(1000)
    a, b = split_text(ids, val_fraction=0.25)
    assert (len(a), len(b)) == (750, 250) and np.array_equal(np.concatenate([a, b]), ids)
    with pytest.raises(ValueError, match="val_fraction"):
        split_text(text, val_fraction=1.0)


def test_corpus_encodes_with_the_whole_texts_vocab():
    text = "abc" * 30 + "xyz"  # x, y, z occur only in the validation part
    corpus = TextCorpus.from_text(text)
    assert corpus.vocab.chars == "abcxyz"
    assert corpus.train.dtype == np.int64 and len(corpus.train) + len(corpus.val) == len(text)
    assert corpus.vocab.decode(corpus.val).endswith("xyz")


def test_tiny_shakespeare_from_the_data_folder(shakespeare_root):
    text = load_tiny_shakespeare(shakespeare_root, downloader=no_network)
    assert len(text) == TINY_SHAKESPEARE_CHARS == 1_115_394
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == TINY_SHAKESPEARE_SHA256
    assert text.startswith("First Citizen:\nBefore we proceed any further")
    corpus = TextCorpus.from_text(text)
    assert len(corpus.vocab) == 65
    assert (len(corpus.train), len(corpus.val)) == (1_003_854, 111_540)
    assert corpus.vocab.decode(corpus.val) == text[1_003_854:]


def test_tiny_shakespeare_found_through_rnnbp_data(shakespeare_root, monkeypatch):
    monkeypatch.setenv("RNNBP_DATA", shakespeare_root)
    assert len(load_tiny_shakespeare(downloader=no_network)) == TINY_SHAKESPEARE_CHARS


def test_tiny_shakespeare_offline_error_says_where_to_put_it(tmp_path):
    def offline(url, output_file, pooch):
        raise ConnectionError("offline")

    with pytest.raises(FileNotFoundError) as info:
        load_tiny_shakespeare(tmp_path, downloader=offline)
    message = str(info.value)
    assert str(tmp_path / "tinyshakespeare" / "input.txt") in message
    assert "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt" in message


# ----------------------------------------------------------------- streams
def test_stream_batches_lays_contiguous_stretches_side_by_side():
    ids = np.arange(23, dtype=np.int64)
    stream = stream_batches(ids, 4)
    assert stream.shape == (5, 4) and stream.dtype == np.int64 and stream.flags.c_contiguous
    for b in range(4):
        assert stream[:, b].tolist() == list(range(5 * b, 5 * b + 5))
    # PyTorch word_language_model's batchify.
    assert np.array_equal(stream, ids[:20].reshape(4, -1).T)


def test_stream_batches_carries_feature_axes():
    feats = np.arange(30, dtype=np.float32).reshape(10, 3)
    stream = stream_batches(feats, 2)
    assert stream.shape == (5, 2, 3) and stream.dtype == np.float32
    assert np.array_equal(stream[:, 1], feats[5:])


@pytest.mark.parametrize("batch_size", [0, 24, -1])
def test_stream_batches_rejects_bad_batch_sizes(batch_size):
    with pytest.raises(ValueError, match=r"batch_size must be in \[1, 23\]"):
        stream_batches(np.arange(23), batch_size)


def test_stream_pairs_shift_targets_by_one():
    stream = stream_batches(np.arange(40), 4)  # (10, 4)
    x, y = stream_pairs(stream)
    assert x.shape == y.shape == (9, 4)
    assert np.array_equal(y, x + 1)  # within a column the ids count up
    with pytest.raises(ValueError, match="at least 2 time steps"):
        stream_pairs(stream[:1])


@pytest.mark.parametrize("k, sizes", [(4, [4, 4, 1]), (3, [3, 3, 3]), (9, [9]), (50, [9])])
def test_stream_chunks_cover_the_pairs_in_order(k, sizes):
    stream = stream_batches(np.arange(40), 4)  # (10, 4): 9 input steps
    chunks = list(stream_chunks(stream, k))
    assert [len(x) for x, _ in chunks] == sizes
    x, y = stream_pairs(stream)
    assert np.array_equal(np.concatenate([c[0] for c in chunks]), x)
    assert np.array_equal(np.concatenate([c[1] for c in chunks]), y)


def test_stream_chunks_validates_when_called():
    with pytest.raises(ValueError, match="k must be a positive integer"):
        stream_chunks(np.zeros((5, 2)), 0)
