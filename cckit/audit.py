"""The operation log and the site lock.

Every change cckit makes on a node is recorded as one JSON line: when, where, what, with
which (redacted) arguments, the outcome, and the certificate fingerprints before and after,
so an auditor or the next engineer can see exactly what a maintenance window did. A
per-site lock keeps two runs (two engineers, two notebooks) from changing the same site at
once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import json
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._internal.fs import safe_name
from .credentials import DROP, MASK, Secret, mask_secrets, redact
from .errors import InputError, SiteLockedError
from .events import EventStream

__all__ = [
    "FIELDS",
    "AuditLog",
    "LockHolder",
    "Operation",
    "check_site_unlocked",
    "default_lock_dir",
    "folder_lock",
    "operation",
    "read",
    "redact_arguments",
    "site_lock",
    "subject_of",
]

FIELDS = ("time", "started", "site", "node", "operation", "arguments", "outcome",
          "fingerprints_before", "fingerprints_after", "error")
_PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S
)
PRIVATE_KEY_REMOVED = "[private key removed]"


# --------------------------------------------------------------------------- redaction


def _clean_text(text: str) -> str:
    return redact(_PRIVATE_KEY_BLOCK.sub(PRIVATE_KEY_REMOVED, text))


def _clean_leaf(value: Any) -> Any:
    """One value JSON-ready with secrets masked; a private key is left out."""
    if isinstance(value, Secret):
        return MASK
    if value is None or isinstance(value, bool | int | float):
        return value
    if _is_private_key(value):
        return DROP
    if isinstance(value, bytes | bytearray):
        return _clean_text(bytes(value).decode("utf-8", "replace"))
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return _clean_text(str(value))  # str, Path, enums, dataclasses: their text, scrubbed


def _clean(value: Any) -> Any:
    """A JSON-ready copy of ``value`` with secrets masked or removed."""
    return mask_secrets(value, secret=lambda where: DROP, leaf=_clean_leaf,
                        key=lambda k: _clean_text(str(k)))


def _is_private_key(value: Any) -> bool:
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    return isinstance(value, str) and "PRIVATE KEY-----" in value


def redact_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """``arguments`` fit for a log: secret-looking keys and private keys dropped,
    :class:`~cckit.credentials.Secret` values masked, every string scrubbed of every secret
    this process has resolved."""
    return _clean(dict(arguments))


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- the log


class AuditLog:
    """Append-only JSONL log of the operations done on one site.

    Each record is one ``os.write`` on an ``O_APPEND`` descriptor followed by ``fsync``, so
    lines from several threads or processes never interleave and survive a crash.
    """

    def __init__(self, path: Path, *, site: str) -> None:
        self.path = Path(path)
        self.site = site
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        #: every :func:`operation` on this log reports its start and end here (progress)
        self.events = EventStream()

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r}, site={self.site!r})"

    def record(
        self,
        node: str | None,
        operation: str,
        *,
        arguments: Mapping[str, Any],
        outcome: str,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        error: str | None = None,
        started: str | None = None,
    ) -> dict[str, Any]:
        """Append one record and return it (as written): ``time`` is when the operation
        ended (now), ``started`` when it began (:func:`operation` passes it)."""
        entry = {
            "time": _utc_now(),
            "started": started,
            "site": _clean_text(self.site),
            "node": _clean_text(node) if node is not None else None,
            "operation": _clean_text(operation),
            "arguments": redact_arguments(arguments or {}),
            "outcome": _clean_text(outcome),
            "fingerprints_before": _clean(dict(before)) if before is not None else None,
            "fingerprints_after": _clean(dict(after)) if after is not None else None,
            "error": _clean_text(error) if error is not None else None,
        }
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                         0o640)
            try:
                written = os.write(fd, line)
                if written != len(line):  # not expected on a local file system
                    os.write(fd, line[written:])
                os.fsync(fd)
            finally:
                os.close(fd)
        return entry


def read(path: Path) -> list[dict[str, Any]]:
    """Every record of a log. A torn last line (a crash mid-write) is ignored; any other
    unreadable line is an :class:`~cckit.errors.InputError` naming it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    out = []
    for i, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
            if not isinstance(rec, dict):
                raise ValueError("not an object")
        except ValueError:
            if i == len(lines):  # no newline after it: torn write
                continue
            raise InputError(f"audit log line {i} is not a JSON object", file=str(path),
                             hint="the file was edited or damaged; keep it, do not append to it"
                             ) from None
        out.append(rec)
    return out


@dataclass
class Operation:
    """Handle given by :func:`operation`; set ``after`` (and ``arguments``) before the end."""

    node: str | None
    name: str
    arguments: dict[str, Any]
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    record: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def operation(
    log: AuditLog,
    node: str | None,
    name: str,
    arguments: Mapping[str, Any],
    *,
    before: Mapping[str, Any] | None = None,
) -> Iterator[Operation]:
    """Record ``name`` on ``node`` as ``ok`` or ``failed`` (with the redacted error), with
    its start and end, and re-raise any exception; the log's event stream hears it start
    and end as it happens. Set ``op.after`` inside the block to log the new state."""
    op = Operation(node, name, dict(arguments), before)
    started = _utc_now()
    detail = subject_of(op.arguments)
    try:
        with log.events.span(node, name, detail):
            yield op
    except BaseException as e:
        message = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        op.record = log.record(node, name, arguments=op.arguments, outcome="failed",
                               before=op.before, after=op.after, error=message,
                               started=started)
        raise
    op.record = log.record(node, name, arguments=op.arguments, outcome="ok",
                           before=op.before, after=op.after, started=started)


#: the arguments that name what an operation works on, most telling first
SUBJECT_KEYS = ("service", "subject", "file", "unit")


def subject_of(arguments: Mapping[str, Any] | None) -> str:
    """What an operation works on (the service restarted, the certificate or COP file, the
    unit), from its arguments: a progress line and the audit record name it."""
    return next((str(arguments[k]) for k in SUBJECT_KEYS if (arguments or {}).get(k)), "")


# --------------------------------------------------------------------------- the site lock


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or held) a lock, as written into the lock file."""

    pid: int | None
    host: str
    started: str
    command: str = ""
    run: str = ""  # the run folder it writes to
    site: str = ""

    def describe(self) -> str:
        who = f"pid {self.pid} on {self.host}" if self.pid else "an unknown process"
        when = f" since {self.started}" if self.started else ""
        cmd = f" ({self.command})" if self.command else ""
        run = f", run folder {self.run}" if self.run else ""
        return f"{who}{when}{cmd}{run}"


def default_lock_dir() -> Path:
    """The one per-user folder of cckit's locks: ``CCKIT_LOCK_DIR`` if set, else
    ``~/.cache/cckit/locks``. Not ``$XDG_RUNTIME_DIR`` or ``$XDG_CACHE_HOME``: a login shell
    has them and a JupyterLab service or a cron job may not, and every run of one user must
    find the same folder to see each other's locks."""
    env = os.environ.get("CCKIT_LOCK_DIR")
    return Path(env) if env else Path.home() / ".cache" / "cckit" / "locks"


def _lock_file(lock_dir: Path | None, name: str) -> Path:
    folder = Path(lock_dir) if lock_dir is not None else default_lock_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder / name


def _read_holder(fd: int) -> LockHolder | None:
    """The holder written in the lock file, or None if it holds nothing readable (yet)."""
    try:
        data = os.pread(fd, 4096, 0)
        info = json.loads(data) if data.strip() else None
    except (OSError, ValueError):
        info = None
    if not isinstance(info, dict):
        return None
    pid = info.get("pid")
    return LockHolder(pid if isinstance(pid, int) else None,
                      *(str(info.get(k, "")) for k in ("host", "started", "command", "run",
                                                       "site")))


class _Held(Exception):
    def __init__(self, holder: LockHolder | None) -> None:
        self.holder = holder or LockHolder(None, "", "")


#: a holder writes who it is right after taking the lock, and a probe holds it for
#: microseconds: a lock held with nothing written yet is tried again for this long
_SETTLE_SECONDS = 2.0


@contextlib.contextmanager
def _exclusive(path: Path, me: LockHolder) -> Iterator[LockHolder]:
    """``flock`` ``path`` exclusively for the block, with ``me`` written in it; raise
    :class:`_Held` (naming the holder) at once if another process holds it. The kernel
    releases the lock when its holder exits or dies, so a crashed run never blocks."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + _SETTLE_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                holder = _read_holder(fd)
                if holder is not None or time.monotonic() > deadline:
                    raise _Held(holder) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me.__dict__) + "\n").encode(), 0)
        os.fsync(fd)
        try:
            yield me
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _me(site: str = "", run: str | os.PathLike | None = None) -> LockHolder:
    return LockHolder(os.getpid(), socket.gethostname(), _utc_now(),
                      " ".join(os.path.basename(a) for a in sys.argv[:3])[:200],
                      str(run) if run else "", site)


def _site_lock_name(site: str, key: str | None) -> str:
    return f"site-{key}.lock" if key else f"{safe_name(site)}.lock"


def _locked(site: str, holder: LockHolder, path: Path) -> SiteLockedError:
    return SiteLockedError(
        f"site {site!r} is locked by another cckit run: {holder.describe()}",
        file=str(path),
        hint="wait for that run to finish (or stop it). The lock frees itself when that "
             "process ends, even if it crashed; do not delete the lock file",
    )


@contextlib.contextmanager
def site_lock(lock_dir: Path | None, site: str, *, key: str | None = None,
              run: str | os.PathLike | None = None) -> Iterator[LockHolder]:
    """Hold the exclusive lock of a site for the duration of the block.

    ``key`` is the site's identity (:attr:`cckit.sites.Site.identity`): every copy of a
    site file, wherever it lies, takes the same lock. The lock files live in one per-user
    folder (``lock_dir``, default :func:`default_lock_dir`), never next to the site file.
    ``run`` is the run folder, written into the lock so a refused run can say where the
    holder writes. Raises :class:`~cckit.errors.SiteLockedError` (pid, host, start time,
    run folder of the holder) at once if another run holds it.
    """
    path = _lock_file(lock_dir, _site_lock_name(site, key))
    try:
        with _exclusive(path, _me(site, run)) as me:
            yield me
    except _Held as held:
        raise _locked(site, held.holder, path) from None


def check_site_unlocked(lock_dir: Path | None, site: str, *, key: str | None = None) -> None:
    """Raise :class:`~cckit.errors.SiteLockedError` now if another run holds the site's lock
    (what ``cckit run`` checks before it writes anything). Takes the lock for an instant."""
    path = _lock_file(lock_dir, _site_lock_name(site, key))
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError as e:
        if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        raise _locked(site, _read_holder(fd) or LockHolder(None, "", ""), path) from None
    finally:
        os.close(fd)


@contextlib.contextmanager
def folder_lock(folder: Path, *, site: str = "", lock_dir: Path | None = None
                ) -> Iterator[LockHolder]:
    """Hold the lock of a run folder: two runs never write into one folder at once.
    Raises :class:`~cckit.errors.SiteLockedError` naming the run that writes there."""
    key = hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:16]
    path = _lock_file(lock_dir, f"folder-{key}.lock")
    try:
        with _exclusive(path, _me(site, folder)) as me:
            yield me
    except _Held as held:
        raise SiteLockedError(
            f"the run folder {folder} is in use by another cckit run: "
            f"{held.holder.describe()}", file=str(folder),
            hint="wait for that run to finish, or give this run another --out folder",
        ) from None
