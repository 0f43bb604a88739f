"""The transport seam: what cckit asks of a VOS node, whatever carries the request.

Like httpx's transports, every way of talking to a node implements one interface and the
procedures never know which one they hold. The interface is four capabilities:

* :class:`CertStore`  own and trust certificates, CSRs, imports
* :class:`Services`   service status and restarts
* :class:`Packages`   the active version and installed COP files, COP installs
* :class:`System`     a whole-node restart

A :class:`Transport` is all four plus ``close()``. Each transport also says, in
``commands``, how it words each operation, so a plan shows what would really be sent.
``ssh.SSHTransport`` is the VOS CLI; ``rest.RestTransport`` is certmgr REST (VOS 14+) for
the certificate store with the CLI for the rest; ``fake.FakeTransport`` is an in-process
node for fast unit tests.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from cryptography import x509

from .. import certs
from ..errors import CommandError
from ..topology import ECDSA_UNIT, RSA_UNIT, TOMCAT, cop_installed

if TYPE_CHECKING:
    from ..credentials import Secret
    from ..sites import CopRepository, Node

__all__ = [
    "CertEntry",
    "CertStore",
    "NotSupported",
    "Packages",
    "Services",
    "StoredCert",
    "System",
    "Transport",
    "VersionInfo",
]


def _trust_stem(name: str) -> str:
    """A trust file name reduced to letters and digits, so ``<CN>_<serial hex>`` matches
    however the node replaced the characters a file name cannot hold."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


class NotSupported(CommandError):
    """This transport cannot do the operation (e.g. COP install over REST)."""


@dataclass(frozen=True)
class VersionInfo:
    """``show version active``: the active version and the installed COP files."""

    version: str
    cops: tuple[str, ...] = ()

    def has_cop(self, file: str) -> bool:
        """Whether the COP ``file`` (as named on the SFTP server, ``....cop.sgn``) is installed.

        ``show version active`` lists installed COPs without the ``.sgn`` of the signed file
        (``cmterm-devicepack9.1.2.13070-1.cop``), so names are compared without it.
        """
        return cop_installed(self.cops, file)


@dataclass(frozen=True)
class StoredCert:
    """One certificate in a node's own or trust store (one line of ``show cert list``).

    ``issuer`` is the signer's CN where the transport knows it as data (REST); otherwise it
    is read from the CLI's description (``Certificate Signed by <CN>``).
    """

    store: str  # "own" | "trust"
    file: str  # e.g. tomcat-ECDSA/tomcat-ECDSA.pem, tomcat-trust/Root_1a2b.pem
    description: str
    unit: str = field(default="")
    certificate: x509.Certificate | None = None
    issuer: str | None = None

    @property
    def self_signed(self) -> bool:
        if self.certificate is not None:
            return certs.describe(self.certificate).self_signed
        return self.description.lower().startswith("self-signed")

    @property
    def signed_by(self) -> str | None:
        if self.self_signed:
            return None
        if self.issuer:
            return self.issuer
        m = re.match(r"Certificate Signed by (.+)", self.description)
        return m.group(1).strip() if m else None


#: the former name, kept while callers move to :class:`StoredCert`
CertEntry = StoredCert


class CertStore(abc.ABC):
    """Own and trust certificates, CSRs and imports of one node."""

    node: Node

    @abc.abstractmethod
    def list_certificates(self, store: str = "own") -> list[StoredCert]:
        """The certificates in the own or trust store."""

    @abc.abstractmethod
    def get_certificate(self, store: str, file: str) -> x509.Certificate:
        """One stored certificate."""

    def trust_files(self, wanted: Iterable[x509.Certificate] = (), *,
                    seen: dict[str, str | None] | None = None,
                    named_only: bool = False) -> dict[str, str]:
        """sha256 -> ``tomcat-trust/...`` file name of the trust certificates read: every
        one of ``wanted`` that the node holds, and every file when ``wanted`` is empty.

        Each file is fingerprinted, one ``show cert`` per file: on a real node each is a
        command of its own and a tomcat-trust holds dozens, so the files named after a
        wanted certificate's CN are read first and the others only while one is still
        missing (never, with ``named_only``: a poll for a CA that has not arrived yet).
        ``seen`` (file -> sha256, None if unreadable) carries what earlier calls read: those
        files are not read again, and it is filled in. Where a node prints no PEM for a
        file, a file named like one of ``wanted`` (``<CN>_<serial hex>``) stands for it.
        """
        wanted = list(wanted)
        seen = {} if seen is None else seen
        by_name = {_trust_stem(f"{certs.describe(c).subject_cn}_{c.serial_number:x}"):
                   certs.fingerprint_sha256(c) for c in wanted}
        cns = {_trust_stem(certs.describe(c).subject_cn or "")[:16] for c in wanted} - {""}

        def named(file: str) -> bool:
            return any(_trust_stem(file.split("/", 1)[1]).startswith(cn) for cn in cns)

        entries = [e for e in self.list_certificates("trust")
                   if e.file.startswith("tomcat-trust/")]
        # the files named for a wanted CN first (a stable sort keeps the node's order)
        entries.sort(key=lambda e: not named(e.file))
        out: dict[str, str] = {}
        for entry in entries:
            if wanted and set(by_name.values()) <= out.keys():
                break
            if entry.file not in seen:
                if named_only and entry.certificate is None and not named(entry.file):
                    continue
                try:
                    cert = entry.certificate or self.get_certificate("trust", entry.file)
                    seen[entry.file] = certs.fingerprint_sha256(cert)
                except CommandError:
                    seen[entry.file] = None
            fp = seen[entry.file]
            if fp is None:  # no PEM printed: the file's name stands for the certificate
                fp = by_name.get(_trust_stem(entry.file.split("/", 1)[1].rsplit(".", 1)[0]))
            if fp is not None:
                out[fp] = entry.file
        return out

    @abc.abstractmethod
    def pending_csr(self, unit: str = ECDSA_UNIT) -> x509.CertificateSigningRequest | None:
        """The CSR waiting for a signed certificate, if there is one."""

    @abc.abstractmethod
    def generate_csr(self, unit: str = ECDSA_UNIT, *, key_size: int | None = None,
                     hash_algorithm: str | None = None) -> x509.CertificateSigningRequest:
        """Generate a new CSR (this replaces the pending CSR and its private key)."""

    def generate_multi_server_csr(self, unit: str = RSA_UNIT) -> x509.CertificateSigningRequest:
        """One CSR for every node of this node's cluster (multi-server SAN, UCCX 11.6.2+);
        its key goes to every cluster node. Only over the CLI."""
        raise CommandError(f"a multi-server CSR is not available over {type(self).__name__}",
                           node=self.node.name, unit=unit,
                           hint="use the SSH (CLI) transport, or multi_san = False")

    def download_csr(self, unit: str = ECDSA_UNIT) -> x509.CertificateSigningRequest:
        csr = self.pending_csr(unit)
        if csr is None:
            raise CommandError(f"no pending CSR for {unit}", node=self.node.name, unit=unit,
                               hint=f"generate one first (set csr gen {unit})")
        return csr

    @abc.abstractmethod
    def upload_trust(self, cert: x509.Certificate) -> str:
        """Add a CA certificate to tomcat-trust; returns its trust-store file name."""

    @abc.abstractmethod
    def upload_identity(self, unit: str, cert: x509.Certificate, ca_file: str) -> None:
        """Import the signed certificate for ``unit``; ``ca_file`` names its issuer in trust."""

class Services(abc.ABC):
    @abc.abstractmethod
    def restart_service(self, name: str = TOMCAT, *, timeout: float = 600) -> None:
        """Restart a service and wait until it is STARTED again."""

    @abc.abstractmethod
    def service_status(self) -> dict[str, str]:
        """Service name -> state (STARTED, STOPPED, ...)."""


class Packages(abc.ABC):
    @abc.abstractmethod
    def version(self) -> VersionInfo:
        """Active version and installed COP files."""

    @abc.abstractmethod
    def install_cop(self, file: str, repository: CopRepository, username: str,
                    password: Secret, *, timeout: float = 900) -> bool:
        """Install a COP from the SFTP repository; False when it was already installed."""


class System(abc.ABC):
    @abc.abstractmethod
    def reboot(self, *, timeout: float = 900) -> None:
        """Restart the whole node and wait until it is back."""


class Transport(CertStore, Services, Packages, System):
    """One open connection to one node: every capability, and ``close()``."""

    #: how this transport words each operation, for plans (``str.format`` templates over
    #: ``unit``, ``service``, ``file``, ``store``)
    commands: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def command(cls, operation: str, **args: str) -> str:
        """What this transport sends for ``operation`` (shown in plans; nothing is sent)."""
        template = cls.commands.get(operation)
        return template.format(**args) if template else operation

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abc.abstractmethod
    def close(self) -> None: ...
