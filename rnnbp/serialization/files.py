"""Paths and file objects for checkpoints: atomic writes, and the removal of dead writers' temporary files.

A save to a path writes ``.<name>.<pid>-<hex>.tmp`` beside it, flushed and fsynced, then
``os.replace``s it over the path, so a crash mid-write leaves the old file intact. The writer
holds an exclusive ``flock`` on its temporary file from creating it until after the rename;
the lock dies with the process, however it dies. So a later save into the same folder can
tell the leftovers of killed writers from the files of saves still running (in this process
or another): it removes a temporary file only if it can take that lock itself. Process ids
are reused, but a lock is never inherited by a stranger.

Where ``flock`` is unavailable the writer's pid, in the file's name, decides instead: the
file is removed only if no process has that pid (a reused pid keeps a leftover, never the
reverse). On Windows, where an open file cannot be deleted, removal is simply attempted.
Temporary files of the older naming ``.<name>.<12 hex>.tmp`` (writers that held no lock) are
removed once untouched for an hour.
"""
from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import secrets
import stat
import time

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

__all__ = ["atomic_write", "remove_stale_temp_files", "is_path", "file_name", "check_binary", "reader"]

_TEMP = re.compile(r"\A\..+\.(?P<pid>[0-9]+)-[0-9a-f]{12}\.tmp\Z", re.DOTALL)
_LEGACY_TEMP = re.compile(r"\A\..+\.[0-9a-f]{12}\.tmp\Z", re.DOTALL)
_LEGACY_AGE = 3600.0  # seconds untouched after which an unlocked old-style temporary file is a leftover


# ------------------------------------------------------------------ paths and file objects
def is_path(f) -> bool:
    return isinstance(f, (str, bytes, os.PathLike))


def file_name(f) -> str:
    """How messages name ``f``: its path, or ``<BytesIO>`` for an anonymous file object."""
    name = getattr(f, "name", None)
    return name if isinstance(name, str) else f"<{type(f).__name__}>"


def check_binary(f, op: str, method: str) -> None:
    """Refuse a text-mode file or an object without ``.read()`` / ``.write()``, naming what was given."""
    if isinstance(f, io.TextIOBase):
        mode = "'wb'" if method == "write" else "'rb'"
        raise TypeError(f"{op}: {file_name(f)} is open in text mode; open it in binary mode ({mode})")
    if not callable(getattr(f, method, None)):
        raise TypeError(
            f"{op}: expected a path (str or os.PathLike) or a binary file object with .{method}(), "
            f"got {type(f).__name__}"
        )


@contextlib.contextmanager
def reader(f):
    """Yield ``(seekable binary file, name for messages)`` for a path or a file object."""
    if is_path(f):
        path = os.fsdecode(f)
        with open(path, "rb") as fh:
            yield fh, path
        return
    check_binary(f, "load", "read")
    name = file_name(f)
    seekable = getattr(f, "seekable", None)
    if not (callable(seekable) and seekable()):
        f = io.BytesIO(f.read())  # zip archives need seeking (a pipe, a socket)
    yield f, name


# ------------------------------------------------------------------ atomic writes
def atomic_write(path: str, write) -> None:
    """Call ``write(file)`` on a locked temporary file beside ``path``, then move it over ``path``.

    Removes dead writers' temporary files from the folder first. On any exception (a
    ``KeyboardInterrupt`` too) the temporary file is removed and ``path`` is untouched.

    Raises:
        FileNotFoundError: the folder of ``path`` does not exist.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"save: cannot write {path}: directory {directory} does not exist")
    remove_stale_temp_files(directory)
    fd, tmp = _create_locked(directory, os.path.basename(path))
    try:
        # Written through a duplicate: closing it keeps the lock, which lives until fd closes after the rename.
        with os.fdopen(os.dup(fd), "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)
    _fsync_directory(directory)


def _create_locked(directory: str, base: str) -> tuple[int, str]:
    """Create, lock and return a fresh temporary file ``(fd, path)``."""
    while True:
        tmp = os.path.join(directory, f".{base}.{os.getpid()}-{secrets.token_hex(6)}.tmp")
        try:
            # 0o666 lets the umask decide the permissions, as for a file opened with open().
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        if _lock(fd, block=True) is not False and _is_same_file(fd, tmp):
            return fd, tmp
        # Another save took it for a leftover in the instant before we locked it, and removed it.
        os.close(fd)


def _lock(fd: int, block: bool):
    """Take an exclusive flock: True if taken, False if another holds it, None if locks are unavailable here."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        return True
    except BlockingIOError:
        return False
    except OSError as exc:  # ENOLCK, EOPNOTSUPP, EINVAL: a file system without flock
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        return None


def _is_same_file(fd: int, path: str) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _fsync_directory(directory: str) -> None:
    """Make the rename durable; best effort (not every OS or file system allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------------ leftovers of dead writers
def remove_stale_temp_files(directory: str) -> list[str]:
    """Remove the temporary files that killed saves left in ``directory``; returns their names.

    Never touches the temporary file of a save still running, in this process or another
    (see the module docstring for how they are told apart). Best effort: a file that cannot
    be examined or removed is left.
    """
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        match = _TEMP.match(name)
        if match is None and not _LEGACY_TEMP.match(name):
            continue
        with contextlib.suppress(OSError):
            if _remove_if_stale(entry.path, None if match is None else int(match["pid"])):
                removed.append(name)
    return removed


def _remove_if_stale(path: str, pid) -> bool:
    if os.name == "nt":  # an open file cannot be deleted there: a live writer's refuses
        if pid is None and time.time() - os.stat(path).st_mtime < _LEGACY_AGE:
            return False
        os.unlink(path)
        return True
    # O_NONBLOCK: a FIFO named like a temporary file must not hang us; O_NOFOLLOW: nor a symlink mislead us.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            return False
        locked = _lock(fd, block=False)
        if locked is False:
            return False  # its writer is alive and holds it
        if pid is None:  # old naming: its writers held no lock
            if time.time() - info.st_mtime < _LEGACY_AGE:
                return False
        elif locked is None and _pid_alive(pid):
            return False
        # Holding the lock: still the same file under that name (not renamed over its target meanwhile)?
        if not _is_same_file(fd, path):
            return False
        os.unlink(path)
        return True
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by someone else
        return True
    return True
