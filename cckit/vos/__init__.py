"""Talking to VOS nodes: one seam (:class:`Transport`), two transports (SSH CLI, certmgr REST)."""

from __future__ import annotations

from pathlib import Path

from .base import CertEntry, NotSupported, Transport, VersionInfo

__all__ = ["CertEntry", "NotSupported", "Transport", "VersionInfo", "connect"]


def connect(site, node, *, trust_on_first_use: bool = False, timeout: float = 30.0,
            include_ou: bool = True, transcript_dir=None) -> Transport:
    """Open the node's transport (as the site file says) with its credential, resolved now.

    ``transcript_dir``: the SSH CLI session is appended to ``<transcript_dir>/<node>.log``."""
    username, password = site.credential_for(node)
    if node.transport == "rest":
        from .rest import RestTransport

        return RestTransport(node, username, password, timeout=timeout)
    from .ssh import SSHTransport

    return SSHTransport(node, username, password, known_hosts=site.known_hosts,
                        trust_on_first_use=trust_on_first_use, timeout=timeout,
                        include_ou=include_ou,
                        transcript_path=(None if transcript_dir is None
                                         else Path(transcript_dir) / f"{node.name}.log"))
