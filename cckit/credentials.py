"""Secrets resolved at run time, never carried as parameters.

A site file names *where* a secret lives (an environment variable, an OS keyring entry or
a file only its owner can read); :func:`resolve` fetches it when a connection is opened and
wraps it in :class:`Secret`, whose ``repr``/``str`` never show the value. Every resolved
value is remembered (in this process only) so :func:`redact` can scrub it from any text
before it is logged or saved.
"""

from __future__ import annotations

import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .errors import CredentialError, MissingDependency

__all__ = ["Secret", "SecretRef", "parse_secret_ref", "redact", "resolve"]

MASK = "********"
_known: set[str] = set()
_known_lock = threading.Lock()


class Secret:
    """A secret value that does not print itself. Call :meth:`reveal` at the point of use."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        if value:
            with _known_lock:
                _known.add(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled or copied out of the process")


def redact(text: str) -> str:
    """``text`` with every secret this process has resolved replaced by a mask."""
    with _known_lock:
        values = sorted(_known, key=len, reverse=True)
    for v in values:
        if v in text:
            text = text.replace(v, MASK)
    return text


@dataclass(frozen=True)
class SecretRef:
    """Where a secret lives: ``env`` (variable name), ``keyring`` (service, username) or
    ``file`` (path)."""

    kind: Literal["env", "keyring", "file"]
    name: str
    username: str | None = None  # keyring only

    def describe(self) -> str:
        if self.kind == "env":
            return f"environment variable {self.name}"
        if self.kind == "keyring":
            return f"keyring entry {self.name}/{self.username}"
        return f"file {self.name}"


def parse_secret_ref(value: object, where: str, base_dir: Path | None = None
                     ) -> tuple[SecretRef | None, list[str]]:
    """A reference from the site file's ``password:`` value, or the problems with it."""
    if isinstance(value, str | int | float):
        return None, [
            f"{where}: secret written inline; the site file must say where the secret is, "
            "e.g. {env: VAR_NAME}, {keyring: {service: S, username: U}} or {file: PATH}"
        ]
    if not isinstance(value, dict) or len(value) != 1:
        return None, [f"{where}: expected exactly one of env, keyring or file"]
    (kind, arg), = value.items()
    if kind == "env":
        if not isinstance(arg, str) or not arg.strip():
            return None, [f"{where}.env: expected an environment variable name"]
        return SecretRef("env", arg.strip()), []
    if kind == "keyring":
        if (not isinstance(arg, dict) or not isinstance(arg.get("service"), str)
                or not isinstance(arg.get("username"), str)):
            return None, [f"{where}.keyring: expected {{service: NAME, username: NAME}}"]
        return SecretRef("keyring", arg["service"], arg["username"]), []
    if kind == "file":
        if not isinstance(arg, str) or not arg.strip():
            return None, [f"{where}.file: expected a path"]
        path = Path(arg).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return SecretRef("file", str(path)), []
    return None, [f"{where}: unknown secret source {kind!r} (use env, keyring or file)"]


def resolve(ref: SecretRef, *, node: str | None = None) -> Secret:
    """Fetch the secret now. Errors say which reference failed and how to fix it."""
    if ref.kind == "env":
        value = os.environ.get(ref.name)
        if not value:
            raise CredentialError(
                f"environment variable {ref.name} is not set or empty", node=node,
                hint=f"export {ref.name} in the shell that starts Jupyter or cckit",
            )
        return Secret(value)
    if ref.kind == "keyring":
        try:
            import keyring
            import keyring.errors
        except ImportError:
            raise MissingDependency("a keyring entry in the site file", "keyring",
                                    "'cckit[keyring]'", node=node) from None
        try:
            value = keyring.get_password(ref.name, ref.username or "")
        except keyring.errors.KeyringError as e:
            raise CredentialError(
                f"keyring entry {ref.name}/{ref.username} could not be read: "
                f"{type(e).__name__}", node=node,
                hint="check that an OS keyring backend is available (keyring --list-backends)",
            ) from None
        if not value:
            raise CredentialError(
                f"keyring has no entry {ref.name}/{ref.username}", node=node,
                hint=f"keyring set {ref.name} {ref.username}",
            )
        return Secret(value)
    return _resolve_file(Path(ref.name), node)


def _resolve_file(path: Path, node: str | None) -> Secret:
    try:
        st = path.stat()
    except OSError as e:
        raise CredentialError(f"secret file cannot be read: {e.strerror}", node=node,
                              file=str(path), hint="create it with mode 0600") from None
    if os.name == "posix" and stat.S_IMODE(st.st_mode) & 0o077:
        raise CredentialError(
            f"secret file is readable by others (mode {stat.S_IMODE(st.st_mode):04o})",
            node=node, file=str(path), hint=f"chmod 600 {path}",
        )
    try:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as e:
        raise CredentialError(f"secret file cannot be read: {type(e).__name__}", node=node,
                              file=str(path)) from None
    if not value:
        raise CredentialError("secret file is empty", node=node, file=str(path))
    return Secret(value)
