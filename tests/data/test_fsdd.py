"""rnnbp.data.fsdd: names, the shipped manifest, splits, offline errors and the download path.

No network: downloads go to fake downloaders. Tests on the real recordings read them through
RNNBP_DATA (e.g. RNNBP_DATA=../shared/data) and are skipped, with the reason, without it.
"""
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

import rnnbp
from rnnbp.data import (
    FSDD, ChecksumError, DatasetError, DatasetNotFoundError, Recording, fsdd_manifest, load_fsdd,
    parse_recording_name,
)
from rnnbp.data import fsdd as fsdd_module
from rnnbp.data.download import sha256_file
from rnnbp.data.fsdd import (
    FSDD_ARCHIVE_ROOT, FSDD_COMMIT, FSDD_HELD_OUT_SPEAKER, FSDD_SPEAKERS, FSDD_URL, default_cache_dir,
)

sf = pytest.importorskip("soundfile")


def write_tone(path: Path, freq: float = 440.0, seconds: float = 0.3, sr: int = 8000) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr, subtype="PCM_16")
    return path


def no_network(url, output_file, pooch):
    raise AssertionError(f"tests must not download; asked for {url}")


def offline(url, output_file, pooch):
    raise ConnectionError(f"Max retries exceeded with url: {url}")


@pytest.fixture
def tones(tmp_path):
    """A folder of 2 digits x 2 speakers x 10 takes of synthetic tones, plus a file that is not a wav."""
    folder = tmp_path / "recordings"
    folder.mkdir()
    for digit in (3, 7):
        for speaker in ("ann", "bob"):
            for take in range(10):
                write_tone(folder / f"{digit}_{speaker}_{take}.wav", 200 + 100 * digit + take, 0.1 + 0.02 * take)
    (folder / "notes.txt").write_text("not a recording")
    return folder


@pytest.fixture(scope="module")
def real(real_root):
    return load_fsdd(real_root, downloader=no_network)


# ------------------------------------------------------------------ names
@pytest.mark.parametrize("name, expected", [
    ("7_jackson_32.wav", (7, "jackson", 32)),
    ("0_george_0.wav", (0, "george", 0)),
    ("/some/where/3_test_7.wav", (3, "test", 7)),
])
def test_parse_recording_name(name, expected):
    assert parse_recording_name(name) == expected
    assert parse_recording_name(Path(name)) == expected


@pytest.mark.parametrize("name", ["7_jackson.wav", "12_jackson_3.wav", "x_jackson_3.wav", "7_jackson_3.flac",
                                  "7_jack_son_3.wav", "7__3.wav"])
def test_parse_recording_name_rejects_other_names(name):
    with pytest.raises(ValueError, match=r"\{digit\}_\{speaker\}_\{take\}\.wav"):
        parse_recording_name(name)


# ---------------------------------------------------------------- manifest
def test_manifest_lists_every_recording_once_with_a_sha256():
    manifest = fsdd_manifest()
    assert len(manifest) == 3000
    labels = [parse_recording_name(rel) for rel in manifest]
    assert all(rel.startswith("recordings/") for rel in manifest)
    assert {s for _, s, _ in labels} == set(FSDD_SPEAKERS)
    assert sorted(labels) == sorted((d, s, k) for d in range(10) for s in FSDD_SPEAKERS for k in range(50))
    assert all(len(h) == 64 and set(h) <= set("0123456789abcdef") for h in manifest.values())
    assert len(set(manifest.values())) == 3000  # no two recordings are the same file
    manifest["recordings/extra.wav"] = "0" * 64
    assert len(fsdd_manifest()) == 3000  # a fresh dict each call


def test_source_is_the_pinned_commit():
    assert len(FSDD_COMMIT) == 40 and FSDD_COMMIT.startswith("26eb9aa")
    assert FSDD_URL == f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/{FSDD_COMMIT}.zip"
    assert FSDD_ARCHIVE_ROOT == f"free-spoken-digit-dataset-{FSDD_COMMIT}"


# --------------------------------------------------------------- datasets
def test_from_folder_reads_labels_sorted_and_skips_other_files(tones):
    ds = FSDD.from_folder(tones)
    assert len(ds) == 40 and ds.cache_dir is None
    assert ds.speakers == ("ann", "bob")
    keys = list(zip(ds.digit.tolist(), ds.speaker.tolist(), ds.take.tolist()))
    assert keys == sorted(keys) and keys[:3] == [(3, "ann", 0), (3, "ann", 1), (3, "ann", 2)]  # take 10 after 9
    assert ds.digit.dtype == np.int64 and ds.take.dtype == np.int64
    rec = ds[5]
    assert isinstance(rec, Recording) and rec == Recording(tones / "3_ann_5.wav", 3, "ann", 5)
    assert rec.path.is_file() and ds.paths[5] == rec.path
    assert [r.take for r in ds][:10] == list(range(10))
    with pytest.raises(ValueError, match="read-only"):
        ds.digit[0] = 9


def test_from_folder_errors_name_the_problem(tmp_path, tones):
    with pytest.raises(FileNotFoundError, match=r"holds no \*\.wav files"):
        FSDD.from_folder(tmp_path)  # exists; its wav files are in a sub-folder
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        FSDD.from_folder(tmp_path / "nowhere")
    write_tone(tones / "seven_ann_1.wav")
    write_tone(tones / "3_ann.wav")
    with pytest.raises(ValueError, match=r"2 file name\(s\).*'3_ann.wav', 'seven_ann_1.wav'"):
        FSDD.from_folder(tones)


def test_subset_keeps_columns_aligned(tones):
    ds = FSDD.from_folder(tones)
    sub = ds.subset([7, 0, -1])
    assert sub.names == (ds.names[7], ds.names[0], ds.names[-1])
    assert sub.take.tolist() == [ds.take[7], ds.take[0], ds.take[-1]]
    assert len(ds.subset(ds.digit == 7)) == 20 and len(ds.subset(slice(0, 4))) == 4
    with pytest.raises(ValueError, match=r"indices must be in \[-40, 40\)"):
        ds.subset([40])
    with pytest.raises(TypeError, match="subset"):
        ds[[1, 2]]


def test_conventional_split_puts_takes_0_to_4_in_test(tones):
    ds = FSDD.from_folder(tones)
    train, test = ds.split()
    assert train.dtype == np.int64 and len(train) + len(test) == len(ds)
    assert set(ds.take[test]) == set(range(5)) and set(ds.take[train]) == set(range(5, 10))
    assert np.intersect1d(train, test).size == 0


def test_speaker_split_holds_out_named_speakers(tones):
    ds = FSDD.from_folder(tones)
    train, test = ds.speaker_split("bob")
    assert set(ds.speaker[test]) == {"bob"} and set(ds.speaker[train]) == {"ann"} and len(test) == 20
    assert np.array_equal(ds.speaker_split(["bob"])[1], test)
    with pytest.raises(ValueError, match=r"unknown speaker\(s\) \['carl'\].*\['ann', 'bob'\]"):
        ds.speaker_split("carl")
    with pytest.raises(ValueError, match="leaves no training"):
        ds.speaker_split(["ann", "bob"])


def test_validation_split_is_stratified_seeded_and_partitions_the_index(tones):
    ds = FSDD.from_folder(tones)
    train, _ = ds.split()  # 4 (digit, speaker) groups x 5 takes
    tr, val = ds.validation_split(train, 0.4, generator=np.random.default_rng(0))
    assert np.array_equal(np.sort(np.concatenate([tr, val])), train) and np.intersect1d(tr, val).size == 0
    assert np.all(np.diff(val) > 0) and np.all(np.diff(tr) > 0)
    pairs = list(zip(ds.digit[val].tolist(), ds.speaker[val].tolist()))
    assert sorted(set(pairs)) == [(3, "ann"), (3, "bob"), (7, "ann"), (7, "bob")]
    assert all(pairs.count(p) == 2 for p in set(pairs))  # round(0.4 * 5) = 2 of every group
    again = ds.validation_split(train, 0.4, generator=np.random.default_rng(0))
    assert np.array_equal(again[1], val)
    draws = {tuple(ds.validation_split(train, 0.4, generator=np.random.default_rng(s))[1]) for s in range(10)}
    assert len(draws) > 1  # the seed matters
    rnnbp.manual_seed(3)
    a = ds.validation_split(train, 0.4)[1]
    rnnbp.manual_seed(3)
    assert np.array_equal(ds.validation_split(train, 0.4)[1], a)  # the default generator is rnnbp's
    assert len(ds.validation_split(train, 0.0)[1]) == 0
    assert len(ds.validation_split(None, 0.5, generator=np.random.default_rng(1))[1]) == 20
    with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\)"):
        ds.validation_split(train, 1.0)
    with pytest.raises(ValueError, match="repeated"):
        ds.validation_split(np.array([1, 1, 2]), 0.5)


# ------------------------------------------------------------ loading
def test_offline_error_names_the_folder_and_the_recordings(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_fsdd(tmp_path / "data", downloader=offline)
    message = str(info.value)
    target = tmp_path / "data" / "fsdd" / "recordings"
    for part in (str(target), "recordings/*.wav", "RNNBP_DATA", "26eb9aa", FSDD_URL, "Max retries",
                 "3,000 of the 3,000 recordings are missing"):
        assert part in message, part
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, DatasetError)
    assert not target.exists() or not any(target.iterdir())


def test_offline_error_uses_rnnbp_data(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNBP_DATA", str(tmp_path / "env"))
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path / "env" / "fsdd" / "recordings")):
        load_fsdd(downloader=offline)


@pytest.fixture
def fake_release(tmp_path, tones, monkeypatch):
    """A GitHub-style zip of the tone recordings (top folder FSDD_ARCHIVE_ROOT) and a manifest for them."""
    manifest = {f"recordings/{p.name}": sha256_file(p) for p in sorted(tones.glob("*.wav"))}
    monkeypatch.setattr(fsdd_module, "fsdd_manifest", lambda: dict(manifest))
    archive = tmp_path / f"{FSDD_COMMIT}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"{FSDD_ARCHIVE_ROOT}/README.md", "FSDD")
        for rel in manifest:
            zf.write(tones / rel.split("/")[1], f"{FSDD_ARCHIVE_ROOT}/{rel}")
    calls = []

    def serve(url, output_file, pooch):
        calls.append(url)
        Path(output_file).write_bytes(archive.read_bytes())

    return manifest, serve, calls


def test_download_unpacks_the_release_archive_and_verifies_it(tmp_path, fake_release):
    manifest, serve, calls = fake_release
    ds = load_fsdd(tmp_path / "data", downloader=serve, progressbar=False)
    assert calls == [FSDD_URL]
    assert len(ds) == len(manifest) == 40
    assert ds.folder == tmp_path / "data" / "fsdd" / "recordings"
    assert all(p.is_file() for p in ds.paths)
    assert not (tmp_path / "data" / "fsdd" / "README.md").exists()  # only the manifest's files
    assert ds.cache_dir == tmp_path / "data" / "fsdd" / "cache"
    assert len(load_fsdd(tmp_path / "data", downloader=no_network)) == 40  # present: not downloaded again


def test_a_changed_recording_is_named_and_not_used(tmp_path, fake_release):
    manifest, serve, _ = fake_release
    load_fsdd(tmp_path / "data", downloader=serve, progressbar=False)
    victim = tmp_path / "data" / "fsdd" / "recordings" / "7_bob_3.wav"
    write_tone(victim, 1000.0)
    with pytest.raises(ChecksumError, match="7_bob_3.wav"):
        load_fsdd(tmp_path / "data", downloader=no_network)
    assert len(load_fsdd(tmp_path / "data", verify="exists", downloader=no_network)) == 40


def test_default_cache_is_per_user_when_the_data_folder_is_read_only(tmp_path, monkeypatch):
    import pooch

    monkeypatch.setattr(pooch, "os_cache", lambda name: tmp_path / "user-cache" / name)
    folder = tmp_path / "data" / "fsdd"
    folder.mkdir(parents=True)
    assert default_cache_dir(folder) == folder / "cache"
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    try:
        assert default_cache_dir(folder) == tmp_path / "user-cache" / "rnnbp" / "fsdd" / "cache"
    finally:
        folder.chmod(stat.S_IRWXU)


# ------------------------------------------------------------ real data
def test_real_dataset_has_every_digit_speaker_and_take(real):
    assert len(real) == 3000 and real.speakers == FSDD_SPEAKERS
    assert real.folder.name == "recordings" and real.folder.parent.name == "fsdd"
    counts = {}
    for d, s in zip(real.digit.tolist(), real.speaker.tolist()):
        counts[d, s] = counts.get((d, s), 0) + 1
    assert counts == {(d, s): 50 for d in range(10) for s in FSDD_SPEAKERS}
    assert set(real.take.tolist()) == set(range(50))
    info = sf.info(str(real.paths[0]))
    assert info.samplerate == 8000 and info.channels == 1


def test_real_conventional_split_is_2700_and_300(real):
    train, test = real.split()
    assert len(train) == 2700 and len(test) == 300
    for idx, per_pair in ((train, 45), (test, 5)):
        pairs, counts = np.unique(np.char.add(real.digit[idx].astype(str), real.speaker[idx]), return_counts=True)
        assert len(pairs) == 60 and set(counts.tolist()) == {per_pair}
    assert set(real.take[test].tolist()) == set(range(5))


def test_real_speaker_split_holds_out_theo(real):
    assert FSDD_HELD_OUT_SPEAKER == "theo"
    train, test = real.speaker_split()
    assert len(train) == 2500 and len(test) == 500
    assert set(real.speaker[test].tolist()) == {"theo"} and "theo" not in set(real.speaker[train].tolist())
    assert np.bincount(real.digit[test]).tolist() == [50] * 10


def test_real_validation_split_takes_5_of_45_of_every_pair(real):
    train, _ = real.split()
    tr, val = real.validation_split(train, 0.1, generator=np.random.default_rng(0))
    assert len(tr) == 2400 and len(val) == 300
    _, counts = np.unique(np.char.add(real.digit[val].astype(str), real.speaker[val]), return_counts=True)
    assert counts.tolist() == [5] * 60
    assert real.take[val].min() >= 5


def test_real_dataset_through_rnnbp_data_without_root(real_root, monkeypatch):
    monkeypatch.setenv("RNNBP_DATA", real_root)
    ds = load_fsdd(verify="exists", downloader=no_network)
    assert len(ds) == 3000 and ds.folder == Path(os.path.abspath(real_root)) / "fsdd" / "recordings"


def test_real_files_match_the_manifest(real):
    manifest = fsdd_manifest()
    some = [0, 1234, 2999]
    assert all(sha256_file(real.paths[i]) == manifest[f"recordings/{real.names[i]}"] for i in some)


def test_real_release_archive_layout_unpacks(tmp_path, real):
    """The real files zipped the way GitHub names the commit's archive, then fetched into a new folder."""
    archive = tmp_path / "release.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        for path in real.paths:
            zf.write(path, f"{FSDD_ARCHIVE_ROOT}/recordings/{path.name}")
    ds = load_fsdd(tmp_path / "data", downloader=lambda url, out, p: Path(out).write_bytes(archive.read_bytes()),
                   progressbar=False)
    assert len(ds) == 3000 and all(p.is_file() for p in ds.paths[::300])
