"""Talking to VOS nodes: one seam (:class:`Transport`), two transports (SSH CLI, certmgr REST)."""

from __future__ import annotations

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


def connect(site, node, *, trust_on_first_use: bool = False, timeout: float = 30.0
            ) -> Transport:
    """Open the node's transport (as the site file says) with its credential, resolved now."""
    username, password = site.credential_for(node)
    from .ssh import SSHTransport

    def cli() -> Transport:
        return SSHTransport(node, username, password, known_hosts=site.known_hosts,
                            trust_on_first_use=trust_on_first_use, timeout=timeout,
                            include_ou=node.include_ou)

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
