"""Writing results: the one writer. Outputs are checked before the work starts
(`check_output`) and written atomically when it is done (`write_atomic`), so a failed run
leaves nothing half-written and never replaces what is not a regular file.

A regular file (or a new path) is written to a temporary file beside it and renamed over it.
A character device or a FIFO (`/dev/null`, `/dev/stdout`, a pipe) is written in place: renaming
over it would replace the device node with a file. A directory, a path under a file, or a
folder that cannot be written is refused with one line (`OutputError`, exit code 2).
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path

from .errors import BadInput


class OutputError(BadInput):
    """An output path that cannot be written (a directory, under a file, no permission, a socket)."""


def check_output(path: str | Path, what: str = "output") -> Path:
    """Refuse, before any work, an output path that `write_atomic` could not write."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    except OSError as e:   # e.g. a path under a regular file (ENOTDIR)
        raise OutputError(f"{what} {path}: cannot be written ({e.strerror or e})") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{what} {path}: is a directory; give a file path")
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
            raise OutputError(f"{what} {path}: is not a regular file, a device or a pipe")
        if not os.access(path, os.W_OK):
            raise OutputError(f"{what} {path}: is not writable")
        if not stat.S_ISREG(st.st_mode):
            return path
    folder = _existing_parent(path.parent)
    if not folder.is_dir():
        raise OutputError(f"{what} {path}: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {path}: folder {folder} is not writable")
    return path


def check_output_dir(path: str | Path, what: str = "output folder") -> Path:
    """Refuse, before any work, an output folder that cannot be created or written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} {path}: exists and is not a directory")
    folder = _existing_parent(path)
    if not folder.is_dir():
        raise OutputError(f"{what} {path}: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {path}: {folder} is not writable")
    return path


def write_atomic(path: str | Path, data: str | bytes, *, durable: bool = False) -> Path:
    """Write `data` to `path`: atomically for a regular file, in place for a device or pipe.
    `durable`: the bytes reach the disk (fsync) before they replace the old file (a checkpoint
    that must survive a power cut, not only a killed process)."""
    path = Path(path)
    blob = data.encode("utf-8") if isinstance(data, str) else data
    check_output(path)
    try:
        if path.exists() and not path.is_file():   # a device or a pipe: never renamed over
            with path.open("wb") as f:
                f.write(blob)
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)  # mkstemp creates 0600; results are ordinary files
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
                if durable:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None
    return path


def safe_name(name: str) -> str:
    """A name from an input (a config's `name`, an algorithm) as one safe path component: runs
    of anything but letters, digits, '.', '_' and '-' become '_', leading and trailing dots
    and underscores go (so '..' and '/etc/x' cannot leave the output folder)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return slug[:100] or "unnamed"


def _existing_parent(path: Path) -> Path:
    """The nearest existing ancestor of `path` (itself if it exists)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
