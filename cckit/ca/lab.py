"""The ``lab`` CA adapter: a small CA kept in a directory, for rehearsal and the demo.

**Not for production.** The CA's private keys are stored *unencrypted* (PKCS#8 PEM, file mode
0600) next to its certificates: anyone who can read the directory can issue certificates
your lab trusts.

Layout of ``directory``::

    root.key  root.pem                 EC P-384 root (self-signed, 10 years)
    intermediate.key  intermediate.pem EC P-384 issuing CA (when ``intermediate=True``)
    issued/<node>.pem  issued/index.json
    rsa/...                            the same for ``algorithm="rsa"`` (RSA-2048)

The RSA variant exists to rehearse the failure path: an ECDSA certificate signed with RSA is
not presented to clients, and the upload gate must stop it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from .. import certs
from .._internal import x509build
from .._internal.fs import atomic_write, safe_name
from ..errors import CertificateLoadError, InputError
from .base import CertificateAuthority, SignedCertificate, SigningKey, check_csr_signature
from .files import issued_by

try:  # POSIX: serialise creation between concurrent runs
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LabCA"]

ROOT_DAYS = 3650
INTERMEDIATE_DAYS = 3650 - 1
LEAF_DAYS = 730
BACKDATE = dt.timedelta(minutes=5)


def _name(cn: str, site: str) -> x509.Name:
    return x509build.name(cn, organization="cckit lab CA (not for production)", unit=site)


class LabCA(CertificateAuthority):
    """An EC (or, to rehearse the failure path, RSA) CA in ``directory``; signs at once.

    Created on first use, reused afterwards. Keys are unencrypted PKCS#8 PEM files with mode
    0600 — it is a lab CA.
    """

    name = "lab"
    state_option = "directory"
    path_options = ("directory",)

    @classmethod
    def unattended(cls, options: Mapping[str, Any]) -> str | None:
        return None  # it signs at once

    def __init__(
        self,
        directory: str | Path,
        *,
        intermediate: bool = True,
        algorithm: str = "ec",
        site: str = "lab",
    ) -> None:
        if algorithm not in ("ec", "rsa"):
            raise InputError(f"lab CA algorithm must be 'ec' or 'rsa', not {algorithm!r}",
                             hint="use 'ec' (the normal case) or 'rsa' to rehearse the "
                             "RSA-signed failure path")
        self.directory = Path(directory)
        self.intermediate = intermediate
        self.algorithm = algorithm
        self.site = site
        self._root: tuple[object, x509.Certificate] | None = None
        self._issuing: tuple[object, x509.Certificate] | None = None

    # ------------------------------------------------------------------ the CA itself

    @property
    def home(self) -> Path:
        """Where this variant's keys and certificates live."""
        return self.directory if self.algorithm == "ec" else self.directory / "rsa"

    @property
    def issued_dir(self) -> Path:
        return self.home / "issued"

    def _new_key(self) -> object:
        if self.algorithm == "ec":
            return ec.generate_private_key(ec.SECP384R1())
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def _hash(self) -> hashes.HashAlgorithm:
        return hashes.SHA384() if self.algorithm == "ec" else hashes.SHA256()

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.home.mkdir(parents=True, exist_ok=True)
        if fcntl is None:  # pragma: no cover
            yield
            return
        with open(self.home / ".lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _load_or_create_key(self, path: Path) -> object:
        if path.exists():
            try:
                return serialization.load_pem_private_key(path.read_bytes(), password=None)
            except (ValueError, TypeError) as e:
                raise InputError(f"cannot read the lab CA key: {e}", file=str(path),
                                 hint="remove the lab CA directory to start a new lab CA"
                                 ) from None
        key = self._new_key()
        pem = key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        atomic_write(path, pem, mode=0o600)
        return key

    def _load_cert(self, path: Path, key: object) -> x509.Certificate | None:
        if not path.exists():
            return None
        cert = certs.load_certificates(path)[0]
        if certs.public_key_sha256(cert) != certs.public_key_sha256(key):
            raise CertificateLoadError(
                "the lab CA certificate does not belong to the key next to it", file=str(path),
                hint="remove the lab CA directory to start a new lab CA",
            )
        return cert

    def _ensure(self) -> None:
        if self._root is not None and (self._issuing is not None or not self.intermediate):
            return
        with self._lock():
            kind = "EC" if self.algorithm == "ec" else "RSA"
            root_key = self._load_or_create_key(self.home / "root.key")
            root = self._load_cert(self.home / "root.pem", root_key)
            if root is None:
                root = self._make_ca(f"cckit lab {kind} root CA ({self.site})", root_key,
                                     None, ROOT_DAYS)
                atomic_write(self.home / "root.pem", _pem(root))
            self._root = (root_key, root)
            if self.intermediate:
                ikey = self._load_or_create_key(self.home / "intermediate.key")
                icert = self._load_cert(self.home / "intermediate.pem", ikey)
                if icert is None or not issued_by(icert, root):
                    icert = self._make_ca(f"cckit lab {kind} issuing CA ({self.site})", ikey,
                                          self._root, INTERMEDIATE_DAYS)
                    atomic_write(self.home / "intermediate.pem", _pem(icert))
                self._issuing = (ikey, icert)
            else:
                self._issuing = self._root

    def _make_ca(self, cn: str, key: object, parent: tuple[object, x509.Certificate] | None,
                 days: int) -> x509.Certificate:
        now = dt.datetime.now(dt.UTC)
        return x509build.ca_certificate(
            _name(cn, self.site), key, parent=parent, path_length=0 if parent else None,
            not_before=now - BACKDATE, not_after=now + dt.timedelta(days=days),
            hash_alg=self._hash())

    @property
    def root_certificate(self) -> x509.Certificate:
        """The root CA certificate (created on first use)."""
        self._ensure()
        assert self._root is not None
        return self._root[1]

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """The CA certificates to trust: (intermediate, root), or (root,) without intermediate."""
        self._ensure()
        assert self._root is not None and self._issuing is not None
        if self._issuing is self._root:
            return (self._root[1],)
        return (self._issuing[1], self._root[1])

    # ------------------------------------------------------------------ the adapter

    def _index_path(self) -> Path:
        return self.issued_dir / "index.json"

    def _index(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self._index_path().read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError:
            return {}  # a damaged index only costs a re-issue
        return data if isinstance(data, dict) else {}

    def submit(self, node: str, csr: x509.CertificateSigningRequest) -> None:
        """Sign ``node``'s CSR now (unless a certificate for this CSR's key is already issued)."""
        if self.collect(node, csr) is not None:
            return
        check_csr_signature(node, csr)
        cert = self._sign(node, csr)
        stem = safe_name(node)
        with self._lock():
            atomic_write(self.issued_dir / f"{stem}.pem", _pem(cert))
            index = self._index()
            index[node] = {
                "file": f"{stem}.pem",
                "public_key_sha256": certs.public_key_sha256(csr),
                "sha256": certs.fingerprint_sha256(cert),
                "serial": format(cert.serial_number, "x"),
            }
            atomic_write(self._index_path(),
                         json.dumps(index, indent=2, sort_keys=True).encode("utf-8"))

    def _sign(self, node: str, csr: x509.CertificateSigningRequest) -> x509.Certificate:
        self._ensure()
        assert self._issuing is not None
        ikey, icert = self._issuing
        try:
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            if not cns:
                raise InputError("the CSR has neither a subject CN nor SANs", node=node,
                                 hint="generate the CSR again on the node") from None
            san = x509.SubjectAlternativeName([x509.DNSName(str(cns[0].value))])
        now = dt.datetime.now(dt.UTC)
        return x509build.leaf_certificate(
            csr.subject, csr.public_key(), issuer=(ikey, icert.subject), sans=san,
            not_before=now - BACKDATE,
            not_after=min(now + dt.timedelta(days=LEAF_DAYS), icert.not_valid_after_utc),
            key_usage=True, hash_alg=self._hash())

    def collect(self, node: str, csr: x509.CertificateSigningRequest) -> SignedCertificate | None:
        """The certificate this CA issued for this CSR's key, or None (then :meth:`submit`)."""
        entry = self._index().get(node)
        if not entry or entry.get("public_key_sha256") != certs.public_key_sha256(csr):
            return None
        path = self.issued_dir / f"{safe_name(node)}.pem"
        if not path.exists():
            return None
        cert = certs.load_certificates(path)[0]
        self._ensure()
        assert self._issuing is not None
        if certs.public_key_sha256(cert) != certs.public_key_sha256(csr) or not issued_by(
                cert, self._issuing[1]):
            return None  # issued by an earlier CA set-up: sign again
        return SignedCertificate(node=node, certificate=cert, chain=self.chain,
                                 source=f"lab CA {self.home}")

    def describe(self) -> str:
        algo = "EC P-384" if self.algorithm == "ec" else "RSA 2048, signs with RSA"
        inter = "with intermediate" if self.intermediate else "root only"
        return f"lab CA ({algo}, {inter}) at {self.home}"

    def waiting_hint(self) -> str:
        return f"the lab CA signs at once; check that {self.home} is writable and rerun"

    def signing_key(self) -> SigningKey:
        """Its own issuing key (the intermediate's, or the root's without one)."""
        self._ensure()
        assert self._issuing is not None
        return SigningKey.of(self._issuing[1], f"the lab CA's own issuing certificate in "
                             f"{self.home}")


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)
