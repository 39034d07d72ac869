"""Room on disk for an output before it is written, so that a write never fails half-way, and the partial
name a file written in one go is saved under until it is complete.

A write that fails in the middle (a full disk, ``ulimit -f``) can leave an HDF5 file that the library can
neither flush nor close (it crashed the process at exit), and a ``.slp`` that no reader opens. So each
writer asks here first:

- ``check_free_space``: the filesystem has the bytes (a clear ``DiskFullError`` when not);
- ``reserve``: the file's next bytes are within the file size limit (``ulimit -f``) and allocated now
  (``fallocate`` keeping the file's size), so another process filling the disk is met here, before any byte
  of the block is written. Filesystems that cannot allocate ahead are written without it; ``release``
  frees what was allocated and not used.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import shutil
from collections.abc import Callable

try:
    import resource
except ImportError:  # Windows: no file size limit to check
    resource = None

from posestream.core.errors import DiskFullError, OutputFileError

CANNOT_ALLOCATE = (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)  # the filesystem cannot allocate ahead
FALLOC_FL_KEEP_SIZE = 1


def check_free_space(path: str, needed: int, what: str, outcome: str) -> None:
    """Raise DiskFullError before writing ``what`` when ``path``'s filesystem has less than ``needed`` bytes
    free."""
    try:
        free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
    except FileNotFoundError:
        return  # no such folder: opening the file says so
    if free < needed:
        raise DiskFullError(
            f"{path}: the disk is full ({free / 1e6:.2f} MB free, writing {what} needs "
            f"{needed / 1e6:.2f} MB); {outcome}"
        )


def reserve(path: str, nbytes: int, what: str, outcome: str) -> None:
    """Make sure the next ``nbytes`` past the end of the existing file ``path`` can be written, before writing
    ``what`` into them: within the file size limit, and allocated on disk (the file's size is unchanged;
    ``release`` frees what was not used). Raises DiskFullError or OutputFileError naming ``outcome``.
    """
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            size = os.fstat(fd).st_size
            _check_size_limit(size + nbytes)
            allocated = _allocate(fd, size, nbytes)
        finally:
            os.close(fd)
    except OSError as exc:
        raise write_error(path, what, exc, outcome) from exc
    if not allocated:
        check_free_space(path, nbytes, what, outcome)


def check_room(path: str, nbytes: int, what: str, outcome: str) -> None:
    """Before writing a new file of about ``nbytes``: within the file size limit and the free space."""
    try:
        _check_size_limit(nbytes)
    except OSError as exc:
        raise write_error(path, what, exc, outcome) from exc
    check_free_space(path, nbytes, what, outcome)


def _check_size_limit(size: int) -> None:
    """OSError(EFBIG) when a file of ``size`` bytes would pass the file size limit (``ulimit -f``)."""
    if resource is None:
        return
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and size > limit:
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))


def release(path: str) -> None:
    """Free the blocks ``reserve`` allocated past the end of ``path`` and nothing used (best effort)."""
    try:
        os.truncate(path, os.path.getsize(path))
    except OSError:
        pass  # the file is complete; the blocks are freed when it is deleted


def _allocate(fd: int, offset: int, nbytes: int) -> bool:
    """fallocate(2) with FALLOC_FL_KEEP_SIZE; False where the system or filesystem cannot allocate ahead."""
    if _fallocate is None:
        return False
    if _fallocate(fd, FALLOC_FL_KEEP_SIZE, offset, nbytes) != 0:
        code = ctypes.get_errno()
        if code in CANNOT_ALLOCATE:
            return False
        raise OSError(code, os.strerror(code))
    return True


def _libc_fallocate():
    """libc's fallocate, typed, or None (not Linux)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        function = libc.fallocate
    except (OSError, AttributeError, TypeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    function.restype = ctypes.c_int
    return function


_fallocate = _libc_fallocate()


def write_error(path: str, what: str, exc: OSError, outcome: str) -> OutputFileError:
    """The error to raise when writing ``what`` to ``path`` failed with ``exc``: DiskFullError for a full
    disk, a quota or the file size limit (``ulimit -f``), else OutputFileError."""
    reason = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is used up",
        errno.EFBIG: "the file size limit is reached (ulimit -f)",
    }.get(exc.errno)
    if reason is None:
        return OutputFileError(f"{path}: writing {what} failed ({exc.strerror or exc}); {outcome}")
    error = DiskFullError(f"{path}: {reason} while writing {what}; {outcome}")
    error.errno = exc.errno
    return error


def partial_path(path: str) -> str:
    """OUT.partial.EXT for OUT.EXT: where a file written in one go (.slp, .nwb) is saved until complete."""
    root, ext = os.path.splitext(path)
    return f"{root}.partial{ext}"


def save_complete(path: str, save: Callable[[str], None], what: str, outcome: str) -> None:
    """``save(partial_path(path))``, then rename it to ``path``: a failed save leaves no file (and what was
    at ``path`` before untouched), and raises DiskFullError or OutputFileError naming ``outcome``."""
    partial = partial_path(path)
    try:
        save(partial)
        os.replace(partial, path)
    except (OSError, RuntimeError) as exc:  # h5py raises either for a failed write
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
        raise write_error(
            path, what, exc if isinstance(exc, OSError) else OSError(str(exc)), outcome
        ) from exc
