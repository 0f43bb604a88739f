"""Atomic, contained file writes for the mock's state directory."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path


class PathEscape(ValueError):
    pass


def contained(root: Path, *parts: str) -> Path:
    """root/parts..., refusing anything that resolves outside `root`."""
    root = Path(root).resolve()
    path = root.joinpath(*parts).resolve()
    if path != root and root not in path.parents:
        raise PathEscape(f"{'/'.join(parts)!r} escapes {root}")
    return path


def atomic_write(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    # Deliberate twin of cckit._internal.fs.atomic_write: the mock imports nothing from
    # the client, so that it can stand for a real node.
    if isinstance(data, str):
        data = data.encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_json(path: Path, obj) -> None:
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: Path, default=None):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return default


def secret_file(path: Path, nbytes: int = 18) -> str:
    """Read the secret in `path`, creating it (0600, random) on first use."""
    path = Path(path)
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(nbytes)
    atomic_write(path, value + "\n", mode=0o600)
    return value
