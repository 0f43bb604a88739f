"""Talking to VOS nodes: one seam (:class:`Transport`), two transports (SSH CLI, certmgr REST)."""

from __future__ import annotations

from pathlib import Path

from .base import (
    CertEntry,
    CertStore,
    NotSupported,
    Packages,
    Services,
    StoredCert,
    System,
    Transport,
    VersionInfo,
)

__all__ = ["CertEntry", "CertStore", "NotSupported", "Packages", "Services", "StoredCert",
           "System", "Transport", "VersionInfo", "connect", "transport_class"]


def connect(site, node, *, trust_on_first_use: bool = False, timeout: float = 30.0,
            transcript_dir: str | Path | None = None) -> Transport:
    """Open the node's transport (as the site file says) with its credential, resolved now.

    ``transcript_dir``: the SSH CLI session is appended to ``<transcript_dir>/<node>.log``."""
    username, password = site.credential_for(node)
    from .ssh import SSHTransport

    def cli() -> Transport:
        return SSHTransport(node, username, password, known_hosts=site.known_hosts,
                            trust_on_first_use=trust_on_first_use, timeout=timeout,
                            include_ou=node.include_ou,
                            transcript_path=(None if transcript_dir is None
                                             else Path(transcript_dir) / f"{node.name}.log"))

    if node.transport == "rest":
        from .rest import RestTransport

        return RestTransport(node, username, password, timeout=timeout, cli=cli)
    return cli()


def transport_class(node) -> type[Transport]:
    """The class that will talk to ``node`` (for plans: no connection is opened)."""
    if node.transport == "rest":
        from .rest import RestTransport

        return RestTransport
    from .ssh import SSHTransport

    return SSHTransport
