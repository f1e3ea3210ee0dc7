"""Find a dataset's files on disk, or download them once; every file is checked against its SHA-256.

A dataset lives in ``<root>/<name>/``, one file per entry of its manifest (a dict of
relative POSIX paths to SHA-256 hex digests), for example::

    <root>/tinyshakespeare/input.txt
    <root>/fsdd/recordings/0_jackson_0.wav   ... (3,000 files)

``root`` is, in this order: the ``root`` argument; the environment variable
``RNNBP_DATA``; the ``datasets/`` folder of a source checkout, when it exists and is
writable; pooch's per-user cache (``pooch.os_cache("rnnbp")``). The variable only says
*where* data lives (as ``SCIKIT_LEARN_DATA`` or ``TORCH_HOME`` do); it changes no results.

:func:`fetch` never rewrites a file that is already there: files present with the right
digest are used as they are (a read-only folder works), a present file with the wrong
digest is an error, and only missing files are downloaded. A download lands in a
temporary file beside its destination and is moved into place only after its digest
matches, so an interrupted or corrupt download never leaves a file that looks valid.
"""
from __future__ import annotations

import hashlib
import os
import posixpath
import secrets
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Mapping
from urllib.parse import urlparse

__all__ = [
    "DATA_ENV", "DatasetError", "DatasetNotFoundError", "ChecksumError",
    "data_root", "fetch", "sha256_file",
]

DATA_ENV = "RNNBP_DATA"
_ARCHIVES = ("zip", "tar")
_VERIFY = ("sha256", "exists")
_SHOWN = 10  # missing or corrupt files listed by name in an error; the rest are counted

# A pooch downloader: called as downloader(url, output_file, pooch) and writes output_file.
Downloader = Callable[[str, str, object], object]


class DatasetError(OSError):
    """A dataset cannot be provided: files missing and not downloadable, or corrupt."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """Files of a dataset are missing and could not be downloaded (offline, URL gone, folder read-only)."""


class ChecksumError(DatasetError):
    """A file's SHA-256 differs from the one in the dataset's manifest."""


# ------------------------------------------------------------------ where
def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder that holds one sub-folder per dataset.

    Args:
        root : str, os.PathLike or None. Used as given when not None. Otherwise the
            environment variable ``RNNBP_DATA`` if set and not empty; otherwise
            ``datasets/`` of a source checkout (the folder beside ``rnnbp/`` and
            ``pyproject.toml``) when it exists and is writable; otherwise
            ``pooch.os_cache("rnnbp")`` (e.g. ``~/.cache/rnnbp`` on Linux).

    Returns:
        An absolute path; it need not exist yet.
    """
    if root is not None:
        return Path(os.path.abspath(os.path.expanduser(os.fspath(root))))
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(os.path.abspath(os.path.expanduser(env)))
    checkout = Path(__file__).resolve().parents[2]
    datasets = checkout / "datasets"
    if datasets.is_dir() and (checkout / "pyproject.toml").is_file() and os.access(datasets, os.W_OK):
        return datasets
    import pooch  # lazy: only needed when there is no checkout folder

    return Path(os.path.abspath(pooch.os_cache("rnnbp")))


# ----------------------------------------------------------------- verify
def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """The SHA-256 hex digest of a file, read in chunks (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_manifest(name: str, files: Mapping[str, str]) -> dict[str, str]:
    """Validate names and digests up front, so a bad manifest fails before any I/O."""
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(f"fetch: name must be a plain folder name, got {name!r}")
    if not files:
        raise ValueError(f"fetch: {name}: the manifest lists no files")
    problems = []
    for rel, digest in files.items():
        parts = rel.split("/")
        if not rel or rel.startswith("/") or "\\" in rel or any(p in ("", ".", "..") for p in parts):
            problems.append(f"{rel!r} is not a relative POSIX path without '.' or '..'")
        if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
            problems.append(f"{rel!r} has {digest!r}, not a lower-case 64-digit SHA-256 hex digest")
    if problems:
        raise ValueError(f"fetch: {name}: bad manifest: " + "; ".join(problems))
    return dict(files)


def _scan(folder: Path, files: Mapping[str, str], verify: str) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Split the manifest into missing files and present files whose digest is wrong."""
    missing, corrupt = [], []
    for rel, expected in files.items():
        path = folder / rel
        if not path.is_file():
            missing.append(rel)
        elif verify == "sha256":
            actual = sha256_file(path)
            if actual != expected:
                corrupt.append((rel, expected, actual))
    return missing, corrupt


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" ... and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def _mismatch_message(name: str, folder: Path, corrupt, source: str) -> str:
    lines = [f"{name}: {len(corrupt)} file(s) {source} do not match the manifest's SHA-256:"]
    for rel, expected, actual in corrupt[:_SHOWN]:
        lines.append(f"  {folder / rel}: expected SHA-256 {expected}, got {actual}")
    if len(corrupt) > _SHOWN:
        lines.append(f"  ... and {len(corrupt) - _SHOWN} more")
    return "\n".join(lines)


def _missing_message(name: str, folder: Path, missing: list[str], url: str, archive: str | None,
                     archive_root: str, exc: BaseException) -> str:
    where = (f"download {url} and place the file as {folder / missing[0]}" if archive is None else
             f"download the {archive} archive {url} and unpack the contents of "
             f"{(archive_root or '<archive top>')!r} into {folder}")
    return (
        f"{name}: {len(missing)} file(s) missing from {folder} and the download failed "
        f"({type(exc).__name__}: {exc}).\n"
        f"  missing: {_listing(missing)}\n"
        f"  to fix: {where};\n"
        f"  or set the environment variable {DATA_ENV} (or pass root=) to a folder that holds {name}/"
    )


# --------------------------------------------------------------- download
def _default_downloader(progressbar: bool) -> Downloader:
    """pooch's downloader for the URL's protocol; ``file://`` URLs (local mirrors) are copied."""

    def download(url: str, output_file: str, pooch_obj=None) -> None:
        parsed = urlparse(url)
        if parsed.scheme == "file":
            from urllib.request import url2pathname  # lazy: urllib.request costs ~13 ms to import

            if parsed.netloc not in ("", "localhost"):
                raise ValueError(f"file URL {url!r} names host {parsed.netloc!r}; only local files are supported")
            shutil.copyfile(url2pathname(parsed.path), output_file)
            return
        import pooch  # lazy: pooch (with requests) loads only when something is downloaded

        pooch.downloaders.choose_downloader(url, progressbar=progressbar)(url, output_file, pooch_obj)

    return download


def _temp_beside(path: Path) -> Path:
    """A fresh name in ``path``'s folder, so the final move is an atomic rename on one file system."""
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")


def _digest_ok(tmp: Path, rel: str, expected: str, bad: list) -> bool:
    """Whether a downloaded file has its manifest digest; a mismatch is recorded in ``bad``."""
    actual = sha256_file(tmp)
    if actual != expected:
        bad.append((rel, expected, actual))
    return actual == expected


def _archive_members(archive_path: Path, kind: str) -> tuple[Callable[[str], object], Callable[[], None]]:
    """An opener ``member name -> binary file or None`` for a zip or tar archive, and its closer."""
    if kind == "zip":
        zf = zipfile.ZipFile(archive_path)
        names = set(zf.namelist())
        return (lambda m: zf.open(m) if m in names else None), zf.close
    import tarfile

    tf = tarfile.open(archive_path)  # any compression tarfile recognises (gz, bz2, xz)
    members = {posixpath.normpath(m.name): m for m in tf.getmembers() if m.isfile()}
    return (lambda m: tf.extractfile(members[m]) if m in members else None), tf.close


def _unpack(archive_path: Path, kind: str, archive_root: str, folder: Path, wanted: Iterable[str],
            files: Mapping[str, str], name: str, url: str) -> dict[str, Path]:
    """Copy only the manifest's members out of the archive into temporary files beside their destinations.

    Only listed members are read, so a member name like ``../../x`` in the archive cannot
    write outside ``folder``.
    """
    open_member, close = _archive_members(archive_path, kind)
    staged, absent, bad = {}, [], []
    try:
        for rel in wanted:
            member = posixpath.normpath(posixpath.join(archive_root, rel)) if archive_root else rel
            src = open_member(member)
            if src is None:
                absent.append(member)
                continue
            dest = folder / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            staged[rel] = tmp = _temp_beside(dest)  # registered first, so a failed copy is cleaned up too
            with src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            if not _digest_ok(tmp, rel, files[rel], bad):
                _discard([staged.pop(rel)])
    except BaseException:
        _discard(staged.values())
        raise
    finally:
        close()
    if absent or bad:
        _discard(staged.values())
    if absent:
        raise DatasetNotFoundError(
            f"{name}: the archive {url} lacks {len(absent)} file(s) of the manifest: {_listing(absent)} "
            f"(is archive_root={archive_root!r} right?)"
        )
    if bad:
        raise ChecksumError(_mismatch_message(name, folder, bad, f"unpacked from {url}") +
                            "\nNothing was kept; the archive may have changed upstream.")
    return staged


def _discard(paths: Iterable[Path]) -> None:
    for p in paths:
        try:
            p.unlink()
        except OSError:
            pass


def _download_single(url: str, folder: Path, rel: str, expected: str, download: Downloader,
                     name: str) -> dict[str, Path]:
    dest = folder / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(dest)
    try:
        download(url, str(tmp), None)
        bad: list = []
        if not _digest_ok(tmp, rel, expected, bad):
            raise ChecksumError(_mismatch_message(name, folder, bad, f"downloaded from {url}") +
                                "\nThe download was not kept; the file may have changed upstream.")
    except BaseException:
        _discard([tmp])
        raise
    return {rel: tmp}


def _download_archive(url: str, kind: str, archive_root: str, folder: Path, missing: list[str],
                      files: Mapping[str, str], download: Downloader, name: str) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=folder) as tmpdir:
        archive_path = Path(tmpdir) / posixpath.basename(urlparse(url).path or "archive")
        download(url, str(archive_path), None)
        return _unpack(archive_path, kind, archive_root, folder, missing, files, name, url)


def fetch(name: str, files: Mapping[str, str], url: str, *, root: str | os.PathLike | None = None,
          archive: str | None = None, archive_root: str = "", verify: str = "sha256",
          downloader: Downloader | None = None, progressbar: bool = True) -> Path:
    """The local folder of dataset ``name``, downloading its missing files from ``url`` first.

    Files already in ``<root>/<name>/`` are checked and used; nothing present is ever
    overwritten. Missing files are downloaded, checked against ``files`` and only then
    moved into place (see the module docstring).

    Args:
        name : str. The dataset's folder under the data root, e.g. ``"tinyshakespeare"``.
        files : Mapping[str, str]. The manifest: relative POSIX path inside the dataset
            folder -> lower-case SHA-256 hex digest. With ``archive=None`` it has exactly
            one entry, the file ``url`` points to.
        url : str. ``https://``, ``http://``, ``ftp://``, ``sftp://`` or ``doi:`` (via pooch),
            or ``file://`` for a local mirror.
        root : str, os.PathLike or None. The data root; see :func:`data_root`.
        archive : None, "zip" or "tar". ``url`` is then an archive (tar: any compression
            tarfile opens) from which only the manifest's files are unpacked.
        archive_root : str. The folder inside the archive that corresponds to
            ``<root>/<name>/``, e.g. ``"free-spoken-digit-dataset-1.0.10"``; "" for its top.
        verify : "sha256" or "exists". How present files are checked: by digest (the
            default; about 0.3 s for 3,000 small files), or only that they exist (for a
            trusted folder when start-up time matters). Downloads are always digest-checked.
        downloader : pooch-style callable ``downloader(url, output_file, pooch)`` that
            writes ``output_file``, or None for pooch's downloader for the protocol
            (``file://`` copied locally). Tests pass a fake one.
        progressbar : bool. Show a tqdm progress bar while downloading.

    Returns:
        Path: ``<root>/<name>``, holding every file of the manifest.

    Raises:
        ValueError: a bad argument or manifest.
        ChecksumError: a present or downloaded file has the wrong digest; names the
            file and both digests.
        DatasetNotFoundError: files are missing and the download failed; names the
            missing files, the folder to put them in, the URL and ``RNNBP_DATA``.
    """
    files = _check_manifest(name, files)
    if archive not in (None, *_ARCHIVES):
        raise ValueError(f"fetch: archive must be None, 'zip' or 'tar', got {archive!r}")
    if archive is None and len(files) != 1:
        raise ValueError(f"fetch: {name}: a single-file URL needs a manifest of one file, got {len(files)}; "
                         "pass archive='zip' or 'tar' for several files")
    if verify not in _VERIFY:
        raise ValueError(f"fetch: verify must be 'sha256' or 'exists', got {verify!r}")
    folder = data_root(root) / name
    missing, corrupt = _scan(folder, files, verify)
    if corrupt:
        raise ChecksumError(_mismatch_message(name, folder, corrupt, "on disk") +
                            "\nDelete or replace them and call again to download fresh copies.")
    if not missing:
        return folder
    download = downloader if downloader is not None else _default_downloader(progressbar)
    try:
        if archive is None:
            staged = _download_single(url, folder, missing[0], files[missing[0]], download, name)
        else:
            staged = _download_archive(url, archive, archive_root, folder, missing, files, download, name)
    except DatasetError:
        raise
    except Exception as exc:  # offline, HTTP error, unknown protocol, read-only folder: all "not available"
        raise DatasetNotFoundError(
            _missing_message(name, folder, missing, url, archive, archive_root, exc)) from exc
    try:
        for rel, tmp in staged.items():
            os.replace(tmp, folder / rel)
    finally:
        _discard(staged.values())  # temp files not moved (after a failed replace); the rest are gone already
    return folder
