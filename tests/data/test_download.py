"""rnnbp.data.download: where data lives, checked files, downloads placed only when verified. No network:
sources are local files (``file://``) or fake downloaders."""
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import rnnbp
from rnnbp.data import download as dl
from rnnbp.data.download import ChecksumError, DatasetError, DatasetNotFoundError, data_root, fetch

CONTENT = b"First Citizen:\nBefore we proceed any further, hear me speak.\n"
SHA = hashlib.sha256(CONTENT).hexdigest()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(folder: Path) -> list:
    """Temporary files or folders a download may have left behind (names starting with '.')."""
    return sorted(str(p) for p in folder.rglob(".*")) if folder.exists() else []


def refuse(url, output_file, pooch):
    raise AssertionError(f"the downloader was called for {url}, but the files are present")


@pytest.fixture
def source(tmp_path):
    """A local 'server' folder holding input.txt, and its file:// URL."""
    served = tmp_path / "served"
    served.mkdir()
    (served / "input.txt").write_bytes(CONTENT)
    return (served / "input.txt").as_uri()


# ------------------------------------------------------------ data_root
def test_data_root_prefers_argument_then_env_then_checkout(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNBP_DATA", str(tmp_path / "env"))
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data_root() == tmp_path / "env"
    monkeypatch.setenv("RNNBP_DATA", "")  # empty counts as unset
    checkout = Path(rnnbp.__file__).resolve().parents[1]
    if (checkout / "datasets").is_dir() and os.access(checkout / "datasets", os.W_OK):
        assert data_root() == checkout / "datasets"
    else:
        assert data_root() != tmp_path / "env"


def test_data_root_makes_relative_paths_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert data_root("rel") == tmp_path / "rel"
    monkeypatch.setenv("RNNBP_DATA", "rel2")
    assert data_root() == tmp_path / "rel2"


def test_importing_rnnbp_does_not_import_pooch_or_requests():
    code = "import sys, rnnbp; print(sorted(m for m in ('pooch', 'requests', 'urllib.request') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------ single file
def test_fetch_downloads_verifies_and_places_the_file(tmp_path, source):
    folder = fetch("corpus", {"input.txt": SHA}, source, root=tmp_path / "data", progressbar=False)
    assert folder == tmp_path / "data" / "corpus"
    assert (folder / "input.txt").read_bytes() == CONTENT
    assert leftovers(folder) == []
    # Present and valid: used as is, nothing downloaded again.
    assert fetch("corpus", {"input.txt": SHA}, source, root=tmp_path / "data", downloader=refuse) == folder


def test_fetch_places_nested_paths(tmp_path, source):
    folder = fetch("corpus", {"texts/a/input.txt": SHA}, source, root=tmp_path, progressbar=False)
    assert (folder / "texts" / "a" / "input.txt").read_bytes() == CONTENT


def test_fetch_passes_pooch_style_arguments_to_an_injected_downloader(tmp_path):
    calls = []

    def fake(url, output_file, pooch):
        calls.append((url, Path(output_file).parent, pooch))
        Path(output_file).write_bytes(CONTENT)

    folder = fetch("corpus", {"input.txt": SHA}, "https://example.org/input.txt", root=tmp_path, downloader=fake)
    assert calls == [("https://example.org/input.txt", folder, None)]  # temp file beside the destination
    assert (folder / "input.txt").read_bytes() == CONTENT


def test_default_downloader_uses_pooch_with_a_progress_bar(tmp_path, monkeypatch):
    pooch = pytest.importorskip("pooch")
    chosen = []

    def choose(url, progressbar=False):
        chosen.append(progressbar)

        def offline(url, output_file, pooch_obj):
            raise ConnectionError("Failed to resolve 'raw.githubusercontent.com'")
        return offline

    monkeypatch.setattr(pooch.downloaders, "choose_downloader", choose)
    with pytest.raises(DatasetNotFoundError, match="ConnectionError: Failed to resolve"):
        fetch("corpus", {"input.txt": SHA}, "https://example.org/input.txt", root=tmp_path)
    assert chosen == [True]


def test_offline_error_names_file_folder_url_and_env_var(tmp_path):
    def offline(url, output_file, pooch):
        raise ConnectionError("Max retries exceeded with url: /input.txt")

    url = "https://example.org/data/input.txt"
    with pytest.raises(DatasetNotFoundError) as info:
        fetch("corpus", {"input.txt": SHA}, url, root=tmp_path / "data", downloader=offline)
    message = str(info.value)
    folder = tmp_path / "data" / "corpus"
    for part in ("input.txt", str(folder), str(folder / "input.txt"), url, "RNNBP_DATA", "Max retries"):
        assert part in message, part
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, DatasetError)
    assert isinstance(info.value.__cause__, ConnectionError)
    assert not (folder / "input.txt").exists() and leftovers(folder) == []


def test_missing_local_source_is_a_not_found_error(tmp_path):
    url = (tmp_path / "nowhere" / "input.txt").as_uri()
    with pytest.raises(DatasetNotFoundError, match="FileNotFoundError"):
        fetch("corpus", {"input.txt": SHA}, url, root=tmp_path / "data", progressbar=False)


def test_unknown_protocol_is_a_not_found_error(tmp_path):
    pytest.importorskip("pooch")
    with pytest.raises(DatasetNotFoundError, match="gopher://x/input.txt"):
        fetch("corpus", {"input.txt": SHA}, "gopher://x/input.txt", root=tmp_path)


def test_corrupt_download_names_both_digests_and_is_not_kept(tmp_path):
    served = tmp_path / "input.txt"
    served.write_bytes(CONTENT + b"tampered")
    with pytest.raises(ChecksumError) as info:
        fetch("corpus", {"input.txt": SHA}, served.as_uri(), root=tmp_path / "data", progressbar=False)
    message = str(info.value)
    folder = tmp_path / "data" / "corpus"
    assert SHA in message and sha(CONTENT + b"tampered") in message
    assert str(folder / "input.txt") in message and served.as_uri() in message
    assert not (folder / "input.txt").exists() and leftovers(folder) == []


def test_corrupt_file_on_disk_is_reported_and_left_alone(tmp_path, source):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "input.txt").write_bytes(b"something else")
    with pytest.raises(ChecksumError) as info:
        fetch("corpus", {"input.txt": SHA}, source, root=tmp_path, downloader=refuse)
    message = str(info.value)
    assert str(folder / "input.txt") in message and SHA in message and sha(b"something else") in message
    assert (folder / "input.txt").read_bytes() == b"something else"
    # The fast check only asks that the file exists.
    assert fetch("corpus", {"input.txt": SHA}, source, root=tmp_path, verify="exists", downloader=refuse) == folder


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="a/b"), "plain folder name"),
    (dict(files={}), "no files"),
    (dict(files={"/abs.txt": SHA}), "relative POSIX path"),
    (dict(files={"../up.txt": SHA}), "relative POSIX path"),
    (dict(files={"input.txt": "abc"}), "64-digit"),
    (dict(files={"input.txt": SHA.upper()}), "64-digit"),
    (dict(files={"a.txt": SHA, "b.txt": SHA}), "manifest of one file"),
    (dict(archive="rar"), "archive must be"),
    (dict(verify="size"), "verify must be"),
])
def test_bad_arguments_raise_value_error_before_any_io(tmp_path, kwargs, match):
    args = dict(name="corpus", files={"input.txt": SHA}, url="https://example.org/input.txt")
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fetch(args.pop("name"), args.pop("files"), args.pop("url"), root=tmp_path, downloader=refuse, **args)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------- archives
MEMBERS = {
    "recordings/0_jackson_0.wav": b"RIFF-zero",
    "recordings/1_theo_3.wav": b"RIFF-one",
    "metadata.py": b"metadata = {}\n",
}
MANIFEST = {rel: sha(data) for rel, data in MEMBERS.items()}


def make_archive(path: Path, kind: str, members: dict, prefix: str = "fsdd-1.0/") -> str:
    """A zip or tar.gz at ``path`` holding ``members`` under ``prefix``, an extra file and a hostile name."""
    entries = {prefix + rel: data for rel, data in members.items()}
    entries[prefix + "README.md"] = b"not in the manifest"
    entries["../escaped.txt"] = b"must never be written"
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in entries.items():
                zf.writestr(name, data)
    else:
        with tarfile.open(path, "w:gz") as tf:
            for name, data in entries.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path.as_uri()


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_archive_unpacks_only_the_manifest(tmp_path, kind):
    url = make_archive(tmp_path / f"fsdd.{kind}", kind, MEMBERS)
    root = tmp_path / "data"
    folder = fetch("fsdd", MANIFEST, url, root=root, archive=kind, archive_root="fsdd-1.0", progressbar=False)
    assert folder == root / "fsdd"
    assert {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == MEMBERS
    assert leftovers(folder) == [] and not (tmp_path / "escaped.txt").exists()
    assert sorted(p.name for p in root.iterdir()) == ["fsdd"]


def test_archive_fills_in_only_missing_files(tmp_path):
    url = make_archive(tmp_path / "fsdd.zip", "zip", MEMBERS)
    kw = dict(root=tmp_path / "data", archive="zip", archive_root="fsdd-1.0", progressbar=False)
    folder = fetch("fsdd", MANIFEST, url, **kw)
    kept = folder / "recordings" / "1_theo_3.wav"
    os.utime(kept, ns=(1, 1))
    (folder / "recordings" / "0_jackson_0.wav").unlink()
    fetch("fsdd", MANIFEST, url, **kw)
    assert (folder / "recordings" / "0_jackson_0.wav").read_bytes() == MEMBERS["recordings/0_jackson_0.wav"]
    assert kept.stat().st_mtime_ns == 1  # present files are not rewritten
    assert fetch("fsdd", MANIFEST, url, downloader=refuse, **{k: v for k, v in kw.items() if k != "progressbar"})


def test_archive_missing_member_names_it_and_keeps_nothing(tmp_path):
    url = make_archive(tmp_path / "fsdd.zip", "zip", MEMBERS)
    manifest = dict(MANIFEST, **{"recordings/9_nicolas_49.wav": SHA})
    with pytest.raises(DatasetNotFoundError, match=r"fsdd-1.0/recordings/9_nicolas_49.wav.*archive_root"):
        fetch("fsdd", manifest, url, root=tmp_path / "data", archive="zip", archive_root="fsdd-1.0",
              progressbar=False)
    folder = tmp_path / "data" / "fsdd"
    assert [p for p in folder.rglob("*") if p.is_file()] == []


def test_archive_with_a_changed_member_names_it_and_keeps_nothing(tmp_path):
    changed = dict(MEMBERS, **{"metadata.py": b"metadata = {'changed': 1}\n"})
    url = make_archive(tmp_path / "fsdd.tar.gz", "tar", changed)
    with pytest.raises(ChecksumError) as info:
        fetch("fsdd", MANIFEST, url, root=tmp_path / "data", archive="tar", archive_root="fsdd-1.0",
              progressbar=False)
    message = str(info.value)
    assert "metadata.py" in message and MANIFEST["metadata.py"] in message
    assert sha(changed["metadata.py"]) in message
    folder = tmp_path / "data" / "fsdd"
    assert [p for p in folder.rglob("*") if p.is_file()] == [] and leftovers(folder) == []


def test_archive_offline_error_says_what_to_unpack_where(tmp_path):
    def offline(url, output_file, pooch):
        raise OSError("Network is unreachable")

    url = "https://example.org/fsdd-1.0.zip"
    with pytest.raises(DatasetNotFoundError) as info:
        fetch("fsdd", MANIFEST, url, root=tmp_path, archive="zip", archive_root="fsdd-1.0", downloader=offline)
    message = str(info.value)
    for part in (url, "'fsdd-1.0'", str(tmp_path / "fsdd"), "3 file(s) missing", "recordings/0_jackson_0.wav",
                 "RNNBP_DATA"):
        assert part in message, part


def test_long_lists_of_missing_files_are_shortened(tmp_path):
    manifest = {f"recordings/{i}.wav": SHA for i in range(25)}

    def offline(url, output_file, pooch):
        raise OSError("offline")

    with pytest.raises(DatasetNotFoundError, match="and 15 more"):
        fetch("fsdd", manifest, "https://example.org/a.zip", root=tmp_path, archive="zip", downloader=offline)


def test_sha256_file_matches_hashlib(tmp_path):
    path = tmp_path / "blob"
    data = os.urandom(3 * (1 << 20) + 17)
    path.write_bytes(data)
    assert dl.sha256_file(path) == sha(data)
    assert dl.sha256_file(path, chunk_size=1000) == sha(data)
