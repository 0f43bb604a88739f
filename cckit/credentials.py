"""Secrets resolved at run time, never carried as parameters; and the one redactor.

A site file names *where* a secret lives (an environment variable, an OS keyring entry or
a file only its owner can read); :func:`resolve` fetches it when a connection is opened and
wraps it in :class:`Secret`, whose ``repr``/``str`` never show the value. Every resolved
value is remembered (in this process only) so :func:`redact` can scrub it from any text
before it is logged or saved.

What a reference points at (the variable's name, the keyring entry, the file's path) is
treated as possibly secret too, because an operator may paste the password where its name
belongs: no error message and no ``repr`` ever shows it; they say "the environment variable
named in credentials.os-admin.password" instead.

This module holds the only rules for what looks like a secret (:data:`SECRET_NAME`, for
argument and parameter names) and the only masking (:func:`redact`), used by the audit log,
the transports, status records and the after-run scrub alike.
"""

from __future__ import annotations

import html
import json
import os
import re
import stat
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import CredentialError, MissingDependency

__all__ = [
    "DROP",
    "MASK",
    "MIN_SECRET_LENGTH",
    "SECRET_NAME",
    "Secret",
    "SecretRef",
    "looks_secret",
    "mask_secrets",
    "parse_secret_ref",
    "redact",
    "resolve",
]

#: what a masked secret reads as, in every record (it says what happened)
MASK = "[secret masked]"
#: shorter secrets cannot be masked without mangling ordinary words: refused at resolve time
MIN_SECRET_LENGTH = 4
#: secrets this long are masked wherever they appear; shorter ones only as whole words
_ANYWHERE_LENGTH = 8
#: names (of arguments, parameters, option keys) whose values are secrets
SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)?|pwd|secret|token|api[_-]?key|private[_-]?key|credential"
    r"|^key$|^auth(orization)?$|cookie|session",
    re.I,
)
#: a password file holds a password: anything bigger (or a FIFO, a device) is a mistake
_MAX_SECRET_FILE = 4096
_known: set[str] = set()
_known_lock = threading.Lock()


def looks_secret(name: object) -> bool:
    """``name`` (an argument, parameter or option name) says its value is a secret."""
    return bool(SECRET_NAME.search(str(name)))


class Secret:
    """A secret value that does not print itself. Call :meth:`reveal` at the point of use."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        if len(value) >= MIN_SECRET_LENGTH:
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


def _variants(value: str) -> set[str]:
    """``value`` as it may appear in a record: as is, JSON-escaped (a notebook), HTML-escaped."""
    return {value, json.dumps(value)[1:-1], html.escape(value, quote=True),
            html.escape(value, quote=False)}


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret this process has resolved, and every one of ``secrets``,
    replaced by :data:`MASK` (which says that a secret was masked there).

    Secrets of 8 characters or more are masked wherever they appear; shorter ones (4 to 7)
    only as whole words, so the password ``pass`` does not turn ``password`` into
    ``[secret masked]word``. Shorter than 4 is refused by :func:`resolve` and ignored here.
    """
    with _known_lock:
        values = set(_known)
    values.update(s for s in secrets if s)
    variants = {v for s in values if len(s) >= MIN_SECRET_LENGTH for v in _variants(s)}
    for v in sorted(variants, key=len, reverse=True):
        if v not in text:
            continue
        if len(v) >= _ANYWHERE_LENGTH:
            text = text.replace(v, MASK)
        else:
            text = re.sub(r"(?<!\w)" + re.escape(v) + r"(?!\w)", MASK, text)
    return text


#: returned by :func:`mask_secrets`'s callbacks: leave this entry out
DROP: Any = object()


def mask_secrets(value: Any, *, path: str = "",
                 secret: Callable[[str], Any] = lambda where: MASK,
                 leaf: Callable[[Any], Any] = lambda v: v,
                 key: Callable[[Any], Any] = lambda k: k) -> Any:
    """The one walk over nested data (mappings, lists, tuples, sets) for secrets, at any
    depth: a copy in which a value under a secret-looking key (:func:`looks_secret`) becomes
    ``secret(where)`` and any other leaf ``leaf(value)``; either may return :data:`DROP` to
    leave the entry out. ``where`` is the entry's path from ``path`` (``ca_options.password``,
    ``nodes[0].token``), for messages; ``key`` makes each kept key (the audit log scrubs
    them). Lists and tuples come back as lists, sets as lists sorted by text.

    Parameters refused for a secret, a run's recorded parameters and the operation log's
    arguments all go through here, so "what looks like a secret" is decided once.
    """
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            where = f"{path}.{k}" if path else str(k)
            new = (secret(where) if looks_secret(k) else
                   mask_secrets(v, path=where, secret=secret, leaf=leaf, key=key))
            if new is not DROP:
                out[key(k)] = new
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        walked = (mask_secrets(v, path=f"{path}[{i}]", secret=secret, leaf=leaf, key=key)
                  for i, v in enumerate(items))
        return [v for v in walked if v is not DROP]
    return leaf(value)


@dataclass(frozen=True)
class SecretRef:
    """Where a secret lives: ``env`` (variable name), ``keyring`` (service, username) or
    ``file`` (path). ``where`` is the site-file field it came from (for messages).

    Neither ``repr`` nor :meth:`describe` shows the name, entry or path: an operator may
    have pasted the password there.
    """

    kind: Literal["env", "keyring", "file"]
    name: str = field(repr=False)
    username: str | None = field(default=None, repr=False)  # keyring only
    where: str = field(default="the site file", compare=False)

    def describe(self) -> str:
        what = {"env": "the environment variable", "keyring": "the keyring entry",
                "file": "the secret file"}[self.kind]
        return f"{what} named in {self.where}"

    def targets(self) -> tuple[str, ...]:
        """What an ``env`` or ``file`` reference names (possibly a pasted password), for the
        after-run scrub. A keyring's service and user name are ordinary words ("cckit",
        "admin") that records legitimately hold: never shown, but not scrubbed."""
        return (self.name,) if self.kind in ("env", "file") else ()


def parse_secret_ref(value: object, where: str, base_dir: Path | None = None
                     ) -> tuple[SecretRef | None, list[str]]:
    """A reference from the site file's ``password:`` value, or the problems with it.

    No problem message repeats what the reference names (it may be a pasted password).
    """
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
        return SecretRef("env", arg.strip(), where=where), []
    if kind == "keyring":
        if (not isinstance(arg, dict) or not isinstance(arg.get("service"), str)
                or not isinstance(arg.get("username"), str)):
            return None, [f"{where}.keyring: expected {{service: NAME, username: NAME}}"]
        return SecretRef("keyring", arg["service"], arg["username"], where=where), []
    if kind == "file":
        if not isinstance(arg, str) or not arg.strip():
            return None, [f"{where}.file: expected a path"]
        path = Path(arg).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return SecretRef("file", str(path), where=where), []
    return None, [f"{where}: unknown secret source (use env, keyring or file)"]


def resolve(ref: SecretRef, *, node: str | None = None) -> Secret:
    """Fetch the secret now. Errors say which reference failed and how to fix it, naming the
    site-file field, never what it points at."""
    where = ref.describe()
    if ref.kind == "env":
        value = os.environ.get(ref.name)
        if not value:
            raise CredentialError(
                f"{where} is not set or empty", node=node,
                hint="export that variable in the shell that starts Jupyter or cckit "
                "(the site file holds its name, never the password itself)",
            )
        return _checked(Secret(value), ref, node)
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
                f"{where} could not be read: {type(e).__name__}", node=node,
                hint="check that an OS keyring backend is available (keyring --list-backends)",
            ) from None
        if not value:
            raise CredentialError(
                f"{where} does not exist in the keyring", node=node,
                hint="store it with 'keyring set SERVICE USERNAME', the service and user name "
                "as written in the site file",
            )
        return _checked(Secret(value), ref, node)
    return _checked(_resolve_file(Path(ref.name), where, node), ref, node)


def _checked(secret: Secret, ref: SecretRef, node: str | None) -> Secret:
    if len(secret.reveal()) < MIN_SECRET_LENGTH:
        raise CredentialError(
            f"the secret from {ref.describe()} is shorter than {MIN_SECRET_LENGTH} "
            "characters: too short to be masked in the records", node=node,
            hint="use the node's real password (VOS requires longer ones)",
        )
    return secret


def _resolve_file(path: Path, where: str, node: str | None) -> Secret:
    try:
        st = path.stat()
    except OSError as e:
        raise CredentialError(f"{where} cannot be read: {e.strerror}", node=node,
                              hint="create it with mode 0600") from None
    if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_SECRET_FILE:
        raise CredentialError(
            f"{where} is not a password file (a regular file of at most "
            f"{_MAX_SECRET_FILE} bytes)", node=node,
            hint="point the site file at a file holding just the password",
        )
    if os.name == "posix" and stat.S_IMODE(st.st_mode) & 0o077:
        raise CredentialError(
            f"{where} is readable by others (mode {stat.S_IMODE(st.st_mode):04o})",
            node=node, hint="chmod 600 that file",
        )
    try:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as e:
        raise CredentialError(f"{where} cannot be read: {type(e).__name__}",
                              node=node) from None
    if not value:
        raise CredentialError(f"{where} is empty", node=node)
    return Secret(value)
