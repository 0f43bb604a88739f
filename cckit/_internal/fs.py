"""Files that are never half-written."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace`` (never half-written).

    The temporary file is created 0600 and given ``mode`` before it takes the final name, so
    a private key is never readable by others, not even for a moment.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def utc_stamp(when: dt.datetime | None = None) -> str:
    """``20261127T141500Z``: how run folders and kept records are named."""
    return (when or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
