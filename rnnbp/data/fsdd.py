"""The Free Spoken Digit Dataset (FSDD): 3,000 recordings of the digits 0-9, their splits and features.

Six speakers each say every digit 50 times: mono 8 kHz WAV files named
``{digit}_{speaker}_{take}.wav`` (e.g. ``7_jackson_32.wav``), 21 MB in all. The version is
fixed: github.com/Jakobovski/free-spoken-digit-dataset at commit :data:`FSDD_COMMIT`
(after tag v1.0.10). Its files live in ``<data folder>/fsdd/recordings/`` and are checked
against SHA-256 sums shipped with rnnbp (``fsdd_manifest.txt`` beside this module, in
``sha256sum`` format, so ``cd <data folder>/fsdd && sha256sum -c <that file>`` checks a copy by
hand). The card ``datasets/fsdd.md`` gives source, licence and splits.

Typical use: extract the features of all recordings once (cached on disk), then index::

    ds = load_fsdd()                                   # FSDD: 3,000 recordings, verified
    feats = ds.features(FeatureConfig())               # Features: (T_i, 39) float32 each, cached
    train, test = ds.split()                           # index arrays: 2,700 / 300
    train, val = ds.validation_split(train, 0.1, generator=g)   # 2,400 / 300
    x_train, y_train = feats.subset(train), ds.digit[train]

Splits return index arrays into the dataset, so one feature extraction serves them all.
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple

import numpy as np

from ..autograd import random as _random
from .buckets import _as_index
from .download import DATA_ENV, DatasetNotFoundError, data_root, fetch

__all__ = [
    "FSDD", "Recording", "load_fsdd", "fsdd_manifest", "parse_recording_name",
    "FSDD_COMMIT", "FSDD_URL", "FSDD_ARCHIVE_ROOT", "FSDD_SAMPLE_RATE", "FSDD_SPEAKERS",
    "FSDD_TEST_TAKES", "FSDD_HELD_OUT_SPEAKER",
]

FSDD_COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"  # after tag v1.0.10; the copy the manifest was made from
FSDD_URL = f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/{FSDD_COMMIT}.zip"
FSDD_ARCHIVE_ROOT = f"free-spoken-digit-dataset-{FSDD_COMMIT}"  # GitHub's single top folder in that zip
FSDD_SAMPLE_RATE = 8000
FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
FSDD_TEST_TAKES = 5  # takes 0-4 of every (digit, speaker) are the conventional test set (FSDD README)
FSDD_HELD_OUT_SPEAKER = "theo"  # the default test speaker of the speaker held-out split
_MANIFEST_FILE = "fsdd_manifest.txt"
_N_RECORDINGS = 3000

_NAME = re.compile(r"^(\d)_([^_/\\]+)_(\d+)\.wav$")


# ---------------------------------------------------------------- names
def parse_recording_name(name: str | os.PathLike) -> tuple[int, str, int]:
    """``(digit, speaker, take)`` of a recording named ``{digit}_{speaker}_{take}.wav``.

    Args:
        name : str or os.PathLike. A file name or path; only its last component is parsed.

    Raises:
        ValueError: the name does not have that form; the message names it.
    """
    base = os.path.basename(os.fspath(name))
    match = _NAME.match(base)
    if match is None:
        raise ValueError(f"FSDD: {base!r} is not named {{digit}}_{{speaker}}_{{take}}.wav "
                         "(digit 0-9, take a number), e.g. '7_jackson_32.wav'")
    return int(match.group(1)), match.group(2), int(match.group(3))


@functools.lru_cache(maxsize=1)
def _read_manifest() -> tuple[tuple[str, str], ...]:
    text = resources.files(__package__).joinpath(_MANIFEST_FILE).read_text(encoding="ascii")
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64 or not rel.startswith("recordings/"):
            raise ValueError(f"FSDD: {_MANIFEST_FILE} line {number} is not '<sha256>  recordings/<name>.wav': "
                             f"{line!r:.120} (the installed package is damaged; reinstall rnnbp)")
        entries.append((rel, digest))
    return tuple(entries)


def fsdd_manifest() -> dict[str, str]:
    """The SHA-256 of every FSDD recording: ``{"recordings/0_george_0.wav": "228a...", ...}`` (3,000 entries).

    Read from ``fsdd_manifest.txt``, shipped inside the package (``sha256sum`` output of
    the recordings at :data:`FSDD_COMMIT`).
    """
    return dict(_read_manifest())


# -------------------------------------------------------------- dataset
class Recording(NamedTuple):
    """One recording: its file and labels."""

    path: Path
    digit: int
    speaker: str
    take: int


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class FSDD:
    """Spoken-digit recordings and their labels, as aligned columns (N recordings).

    Items are sorted by (digit, speaker, take), so the order is the same wherever the
    files live. ``ds[i]`` is a :class:`Recording`; :meth:`subset` takes many.

    Attributes:
        folder : Path. The folder that holds the WAV files.
        names : tuple[str, ...] [len N]. File names, ``{digit}_{speaker}_{take}.wav``.
        digit : np.ndarray [shape=(N,), dtype=int64]. The spoken digit, 0-9: the label.
        speaker : np.ndarray [shape=(N,), dtype=str]. The speaker's name.
        take : np.ndarray [shape=(N,), dtype=int64]. The take (FSDD: 0-49 per digit and speaker).
        cache_dir : Path or None. Where :meth:`features` caches by default (None: no cache);
            :func:`load_fsdd` sets ``<data folder>/fsdd/cache`` (or the per-user cache when
            the data folder is read-only).
    """

    folder: Path
    names: tuple[str, ...]
    digit: np.ndarray = field(repr=False)
    speaker: np.ndarray = field(repr=False)
    take: np.ndarray = field(repr=False)
    cache_dir: Path | None = None

    @classmethod
    def from_names(cls, folder: str | os.PathLike, names: Iterable[str],
                   cache_dir: str | os.PathLike | None = None) -> "FSDD":
        """The recordings ``folder/name`` for each name, labels parsed from the names.

        Raises:
            ValueError: some names are not ``{digit}_{speaker}_{take}.wav`` (all are listed),
                or a name appears twice.
        """
        names = [os.path.basename(n) for n in names]
        parsed, bad = [], []
        for n in names:
            m = _NAME.match(n)
            if m is None:
                bad.append(n)
            else:
                parsed.append((int(m.group(1)), m.group(2), int(m.group(3)), n))
        if bad:
            raise ValueError(f"FSDD: {len(bad)} file name(s) are not {{digit}}_{{speaker}}_{{take}}.wav: "
                             f"{', '.join(map(repr, bad[:10]))}{' ...' if len(bad) > 10 else ''}")
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"FSDD: duplicate file names: {dup[:10]}")
        parsed.sort()
        folder = Path(os.path.abspath(os.fspath(folder)))
        return cls(
            folder=folder,
            names=tuple(p[3] for p in parsed),
            digit=np.array([p[0] for p in parsed], dtype=np.int64),
            speaker=np.array([p[1] for p in parsed], dtype=str),
            take=np.array([p[2] for p in parsed], dtype=np.int64),
            cache_dir=None if cache_dir is None else Path(os.path.abspath(os.fspath(cache_dir))),
        )

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> "FSDD":
        """Every ``*.wav`` in ``folder`` (not its sub-folders), unverified: for recordings of your own.

        Args:
            folder : str or os.PathLike. Holds files named ``{digit}_{speaker}_{take}.wav``.
            cache_dir : where :meth:`features` caches; None: no cache unless passed there.

        Raises:
            FileNotFoundError: ``folder`` does not exist or holds no ``.wav`` file.
            ValueError: a ``.wav`` file is not named ``{digit}_{speaker}_{take}.wav``.
        """
        folder = Path(os.path.abspath(os.fspath(folder)))
        if not folder.is_dir():
            raise FileNotFoundError(f"FSDD.from_folder: {folder} is not a folder")
        names = sorted(p.name for p in folder.glob("*.wav") if p.is_file())
        if not names:
            raise FileNotFoundError(f"FSDD.from_folder: {folder} holds no *.wav files "
                                    "(expected {digit}_{speaker}_{take}.wav)")
        return cls.from_names(folder, names, cache_dir)

    def __post_init__(self):
        n = len(self.names)
        columns = {"digit": np.array(self.digit, np.int64), "speaker": np.array(self.speaker, str),
                   "take": np.array(self.take, np.int64)}  # copies: freezing them leaves the caller's arrays alone
        shapes = {k: v.shape for k, v in columns.items()}
        if any(s != (n,) for s in shapes.values()):
            raise ValueError(f"FSDD: digit, speaker and take must have shape ({n},) like names, got {shapes}")
        for k, v in columns.items():
            object.__setattr__(self, k, _readonly(v))  # frozen: the columns cannot change under a split

    # ------------------------------------------------------------ access
    @property
    def paths(self) -> list[Path]:
        """The recordings' paths, in item order."""
        return [self.folder / n for n in self.names]

    @property
    def speakers(self) -> tuple[str, ...]:
        """The distinct speakers, sorted."""
        return tuple(np.unique(self.speaker).tolist())

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> Recording:
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"FSDD: ds[i] takes one integer index, got {type(i).__name__}; "
                            "use ds.subset(index) for several")
        name = self.names[i]  # raises IndexError as a tuple does
        return Recording(self.folder / name, int(self.digit[i]), str(self.speaker[i]), int(self.take[i]))

    def __iter__(self) -> Iterator[Recording]:
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return f"FSDD({len(self)} recordings, {len(self.speakers)} speakers, in {self.folder})"

    def subset(self, index) -> "FSDD":
        """The recordings at ``index`` (integer indices, a boolean mask or a slice), in that order."""
        idx = _as_index(index, len(self), "FSDD.subset")
        return FSDD(self.folder, tuple(self.names[i] for i in idx), self.digit[idx], self.speaker[idx],
                    self.take[idx], self.cache_dir)

    # ------------------------------------------------------------ splits
    def split(self) -> tuple[np.ndarray, np.ndarray]:
        """The conventional split: takes 0-4 of every digit and speaker are the test set.

        On FSDD: 2,700 train and 300 test recordings, every (digit, speaker) pair with 45 and
        5. The same speakers appear on both sides; see :meth:`speaker_split` for unseen ones.

        Returns:
            (train, test): np.ndarray [dtype=int64] of ascending indices into this dataset.
        """
        test = self.take < FSDD_TEST_TAKES
        return np.flatnonzero(~test).astype(np.int64), np.flatnonzero(test).astype(np.int64)

    def speaker_split(self, test_speakers: str | Iterable[str] = FSDD_HELD_OUT_SPEAKER
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Hold out whole speakers: every recording of ``test_speakers`` is test, the rest train.

        On FSDD with the default ``"theo"``: 2,500 train, 500 test recordings.

        Args:
            test_speakers : str or iterable of str. Speakers of this dataset.

        Returns:
            (train, test): np.ndarray [dtype=int64] of ascending indices.

        Raises:
            ValueError: an unknown speaker (the known ones are listed), none given, or all.
        """
        held = [test_speakers] if isinstance(test_speakers, str) else list(test_speakers)
        unknown = sorted(set(held) - set(self.speakers))
        if unknown or not held:
            raise ValueError(f"FSDD.speaker_split: unknown speaker(s) {unknown} (or none given); "
                             f"this dataset has {list(self.speakers)}")
        test = np.isin(self.speaker, held)
        if test.all():
            raise ValueError(f"FSDD.speaker_split: holding out {held} leaves no training recordings")
        return np.flatnonzero(~test).astype(np.int64), np.flatnonzero(test).astype(np.int64)

    def validation_split(self, index=None, fraction: float = 0.1, *,
                         generator: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Carve a validation set out of ``index`` (e.g. the train side of :meth:`split`).

        Stratified and seeded: within every (digit, speaker) group of ``index``,
        ``round(fraction * group size)`` recordings (halves round up) drawn at random go
        to validation, so it holds every digit and speaker in their proportions. From the
        conventional 2,700 train recordings, ``fraction=0.1`` gives 2,400 train and 300
        validation (5 of the 45 takes of every pair).

        Args:
            index : indices, a boolean mask or a slice into this dataset; None for all.
            fraction : float in [0, 1).
            generator : np.random.Generator or None (the generator ``rnnbp.manual_seed`` seeds).

        Returns:
            (train, val): np.ndarray [dtype=int64] of ascending indices, disjoint, together ``index``.
        """
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"FSDD.validation_split: fraction must be in [0, 1), got {fraction}")
        idx = np.arange(len(self), dtype=np.int64) if index is None else _as_index(index, len(self),
                                                                                   "FSDD.validation_split")
        if len(np.unique(idx)) != len(idx):
            raise ValueError("FSDD.validation_split: index has repeated entries")
        _, speaker_code = np.unique(self.speaker[idx], return_inverse=True)
        key = self.digit[idx] * (speaker_code.max(initial=0) + 1) + speaker_code  # one id per (digit, speaker)
        _, group, counts = np.unique(key, return_inverse=True, return_counts=True)
        order = np.lexsort((_random.get_generator(generator).random(len(idx)), group))  # by group, random within
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.empty(len(idx), dtype=np.int64)
        rank[order] = np.arange(len(idx)) - starts[group[order]]  # position in the group's random order
        n_val = np.floor(fraction * counts + 0.5).astype(np.int64)
        is_val = rank < n_val[group]
        return np.sort(idx[~is_val]), np.sort(idx[is_val])

    # ---------------------------------------------------------- features
    def features(self, config=None, *, cache_dir: str | os.PathLike | None = None, n_jobs: int = -1,
                 progressbar: bool = True):
        """Features of every recording, in item order: see :func:`rnnbp.data.features.extract_features`.

        Extract once for the whole dataset and index the result with the splits' indices
        (``feats.subset(train)``): the cache is keyed by the file list.

        Args:
            config : FeatureConfig or None (the defaults: 13 MFCC + deltas + delta-deltas).
            cache_dir : overrides :attr:`cache_dir` for this call.
            n_jobs, progressbar : as for ``extract_features``.

        Returns:
            Features: N utterances of shape (T_i, config.n_features), float32.
        """
        from .features import FeatureConfig, extract_features

        return extract_features(self.paths, FeatureConfig() if config is None else config,
                                cache_dir=self.cache_dir if cache_dir is None else cache_dir,
                                n_jobs=n_jobs, progressbar=progressbar)


# ----------------------------------------------------------------- load
def _writable(path: Path) -> bool:
    """Whether ``path`` is, or could be created as, a writable folder.

    A folder without any write permission bit counts as read-only even where
    ``os.access`` allows writing (as root does): the bits say the data is not to be touched.
    """
    while not path.exists():
        if path.parent == path:
            return False
        path = path.parent
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK) and bool(path.stat().st_mode & 0o222)


def default_cache_dir(folder: Path) -> Path:
    """``folder/cache`` when writable, else the per-user ``pooch.os_cache("rnnbp")/fsdd/cache``."""
    own = folder / "cache"
    if _writable(own):
        return own
    import pooch  # lazy: only for a read-only data folder

    return Path(os.path.abspath(pooch.os_cache("rnnbp"))) / "fsdd" / "cache"


def load_fsdd(root: str | os.PathLike | None = None, *, verify: str = "sha256",
              downloader: Callable | None = None, progressbar: bool = True) -> FSDD:
    """The Free Spoken Digit Dataset: 3,000 recordings, each checked against the shipped manifest.

    The files are ``<root>/fsdd/recordings/*.wav``. Missing ones are unpacked from the zip
    archive of :data:`FSDD_COMMIT` on GitHub (:data:`FSDD_URL`, downloaded with pooch and a
    progress bar) and moved into place only after their SHA-256 matches; see
    :func:`rnnbp.data.download.fetch`.

    Args:
        root : str, os.PathLike or None. The data folder; None: ``RNNBP_DATA``, else the
            checkout's ``datasets/``, else the per-user cache (:func:`rnnbp.data.data_root`).
        verify : "sha256" or "exists". "sha256" (the default) hashes all 3,000 present
            files on every call, about 0.3 s for the 21 MB; "exists" only checks that they
            are there (about 10 ms), for a folder already verified once.
        downloader, progressbar : as for :func:`rnnbp.data.download.fetch`.

    Returns:
        FSDD: the 3,000 recordings, with ``cache_dir`` set to ``<root>/fsdd/cache`` (or to
        ``pooch.os_cache("rnnbp")/fsdd/cache`` when the data folder is read-only).

    Raises:
        DatasetNotFoundError: recordings are missing and could not be downloaded; the
            message says where to put ``recordings/*.wav``.
        ChecksumError: a present file differs from the manifest; names it and both digests.
    """
    manifest = fsdd_manifest()
    try:
        folder = fetch("fsdd", manifest, FSDD_URL, root=root, archive="zip", archive_root=FSDD_ARCHIVE_ROOT,
                       verify=verify, downloader=downloader, progressbar=progressbar)
    except DatasetNotFoundError as exc:
        target = data_root(root) / "fsdd" / "recordings"
        missing = sum(not (target.parent / rel).is_file() for rel in manifest)
        raise DatasetNotFoundError(
            f"FSDD: {missing:,} of the {_N_RECORDINGS:,} recordings are missing from {target} "
            f"and could not be downloaded.\n"
            f"  to fix: put the files recordings/*.wav of FSDD (github.com/Jakobovski/free-spoken-digit-dataset "
            f"at commit {FSDD_COMMIT[:7]}, after tag v1.0.10) into {target}{os.sep}, i.e. "
            f"{target}{os.sep}0_george_0.wav ... 9_yweweler_49.wav;\n"
            f"  or set {DATA_ENV} (or pass root=) to a folder holding fsdd/recordings/*.wav.\n"
            f"Details: {exc}"
        ) from exc
    return FSDD.from_names(folder / "recordings", [rel.split("/", 1)[1] for rel in manifest],
                           cache_dir=default_cache_dir(folder))
