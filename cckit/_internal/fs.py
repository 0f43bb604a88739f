"""Files that are never half-written, and names that never leave their directory."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import tempfile
from pathlib import Path

from ..errors import InputError

#: a name kept as it is: letters, digits, '.', '_', '-', not starting with '.' or '-'
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: the longest name :func:`safe_name` returns by default (file systems allow 255 bytes)
NAME_LIMIT = 64


def safe_name(text: str, *, limit: int = NAME_LIMIT, default: str = "x") -> str:
    """A file or folder name for ``text`` (a site, node or certificate name from a site file,
    a node or a CA) that cannot leave its directory: the one sanitiser of cckit.

    A plain name (letters, digits, ``.``, ``_``, ``-``; not starting with ``.`` or ``-``; no
    ``..``; at most ``limit`` characters) is kept as it is. Anything else (``../x``, ``a/b``,
    control characters, spaces, a name too long for the file system) is replaced character
    by character, trimmed to ``limit`` and suffixed with a short hash of the original, so two
    different names never share a file. ``default`` stands in when nothing usable is left;
    an empty ``text`` is an :class:`~cckit.errors.InputError`.
    """
    text = str(text)
    if not text.strip():
        raise InputError("empty name where a file or folder name is needed",
                         hint="name every site and node in the site file")
    if len(text) <= limit and _PLAIN.fullmatch(text) and ".." not in text:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    cleaned = re.sub(r"\.{2,}", ".", _UNSAFE.sub("_", text)).strip("._-")
    cleaned = cleaned[: max(1, limit - len(digest) - 1)].rstrip("._-") or default
    return f"{cleaned}-{digest}"


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


def out_folder(path: str | os.PathLike) -> Path:
    """``--out`` as an absolute path; an :class:`~cckit.errors.InputError` if it is a file."""
    out = Path(path).resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder", file=str(out),
                         hint="give a new or existing folder for the record")
    return out


def utc_stamp(when: dt.datetime | None = None) -> str:
    """``20261127T141500Z``: how run folders and kept records are named."""
    return (when or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
