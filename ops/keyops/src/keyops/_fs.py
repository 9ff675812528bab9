"""Atomic, owner-only file writes.

Workers and the codec server read the key ring at start-up; a reader must see the old file or
the new one, never half of either. Same-directory temp file, fsync, rename, fsync directory.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from keyops.errors import KeyOpsError

PRIVATE_MODE = 0o600


def atomic_write(path: Path, data: bytes, mode: int = PRIVATE_MODE) -> None:
    directory = path.parent
    try:
        # mkstemp creates the file 0600 from the start, so secrets are never briefly readable.
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise KeyOpsError(
            f"cannot write in {directory} ({exc.strerror or exc}); check the path and permissions"
        ) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise KeyOpsError(f"cannot write {path} ({exc.strerror or exc}); the previous file is unchanged") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; some filesystems refuse O_RDONLY fsync on directories.
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
