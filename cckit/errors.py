"""The one exception tree of cckit.

Every error cckit raises on purpose derives from :class:`CckitError` and carries the
context an engineer needs in a maintenance window: which node, which file, which
certificate unit, and what to do next. ``str(error)`` is a complete, secret-free sentence.

::

    CckitError
    ├── InputError                 bad input; nothing was changed
    │   ├── MissingDependency      an optional package a feature needs is not installed
    │   ├── CertificateLoadError   a file is not a certificate/CSR we can read
    │   ├── SiteFileError          the site file is invalid (lists every problem)
    │   └── GateError              a signed certificate must not be uploaded (lists reasons)
    ├── CredentialError            a secret reference cannot be resolved
    ├── TransportError             talking to a node failed
    │   ├── ConnectError           unreachable, refused, timed out
    │   ├── AuthenticationError    wrong user/password, account locked
    │   ├── HostKeyError           unknown or changed SSH host key, REST TLS mismatch
    │   ├── CommandError           the node refused a command (VOS error text attached)
    │   └── NodeTimeout            the node did not answer or come back in time
    ├── ProcedureError             a runbook step could not complete
    │   ├── WaitingForCA           the CA has not returned the signed certificates yet
    │   └── SiteLockedError        another run holds this site's lock
    └── ProbeError                 a TLS probe could not complete
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "CckitError",
    "CertificateLoadError",
    "CommandError",
    "ConnectError",
    "CredentialError",
    "GateError",
    "HostKeyError",
    "InputError",
    "MissingDependency",
    "NodeTimeout",
    "ProbeError",
    "ProcedureError",
    "SiteFileError",
    "SiteLockedError",
    "TransportError",
    "WaitingForCA",
]


class CckitError(Exception):
    """Root of every error cckit raises on purpose.

    ``node``, ``file`` and ``unit`` say where; ``hint`` says what to do next.
    """

    def __init__(
        self,
        message: str,
        *,
        node: str | None = None,
        file: str | None = None,
        unit: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.node = node
        self.file = file
        self.unit = unit
        self.hint = hint
        super().__init__(message)

    def context(self) -> dict[str, str]:
        """Where the error happened, as a small dict for tables and logs."""
        out = {"node": self.node, "file": self.file, "unit": self.unit}
        return {k: v for k, v in out.items() if v}

    def __str__(self) -> str:
        where = ", ".join(f"{k} {v}" for k, v in self.context().items())
        text = f"[{where}] {self.message}" if where else self.message
        if self.hint:
            text += f"\n  What to do: {self.hint}"
        return text

    def _render_traceback_(self) -> list[str]:
        """IPython/Jupyter show this instead of a traceback: the message and what to do."""
        return [f"{type(self).__name__}: {self}"]


class InputError(CckitError):
    """Bad input; nothing was changed."""


class CertificateLoadError(InputError):
    """A file does not hold a certificate or CSR cckit can read."""


class SiteFileError(InputError):
    """The site file is invalid; ``problems`` lists every one found."""

    def __init__(self, problems: list[str], *, file: str | None = None) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"site file is invalid ({len(self.problems)} problem"
            f"{'s' if len(self.problems) != 1 else ''}):\n{lines}",
            file=file,
            hint="fix the site file (see docs/site-file.md) and run again",
        )


class GateError(InputError):
    """A signed certificate failed the upload gate; ``reasons`` lists every failure."""

    def __init__(
        self,
        reasons: list[str],
        *,
        node: str | None = None,
        file: str | None = None,
        unit: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.reasons = list(reasons)
        body = "\n".join(f"  - {r}" for r in self.reasons)
        super().__init__(
            f"certificate refused by the upload gate:\n{body}",
            node=node,
            file=file,
            unit=unit,
            hint=hint,
        )


class MissingDependency(InputError):
    """An optional package is not installed; ``hint`` names the pip extra to install."""

    def __init__(self, feature: str, package: str, extra: str | None = None, **kw: str | None
                 ) -> None:
        super().__init__(f"{feature} needs the {package!r} package, which is not installed",
                         hint=f"pip install {extra or package}", **kw)


class CredentialError(CckitError):
    """A secret reference could not be resolved (the secret itself is never shown)."""


class TransportError(CckitError):
    """Talking to a node failed."""


class ConnectError(TransportError):
    """The node could not be reached."""


class AuthenticationError(TransportError):
    """The node refused the credentials."""


class HostKeyError(TransportError):
    """The node's SSH host key (or REST certificate) is unknown or has changed."""


class CommandError(TransportError):
    """The node refused a command; ``output`` holds what VOS printed."""

    def __init__(self, message: str, *, output: str = "", **kw: str | None) -> None:
        self.output = output
        super().__init__(message, **kw)


class NodeTimeout(TransportError):
    """A bounded wait ran out: the node did not answer, or did not serve again, in time."""


class ProcedureError(CckitError):
    """A runbook step could not complete."""


class WaitingForCA(ProcedureError):
    """The CA has not returned every signed certificate yet; rerun once it has."""


class SiteLockedError(ProcedureError):
    """Another run holds the site's lock."""


class ProbeError(CckitError):
    """A TLS probe could not complete."""
