"""The ``files`` CA adapter: an outbox of CSRs and an inbox of signed certificates.

For an offline or enterprise CA, where a person carries the CSRs to the CA and the
certificates back. :meth:`FilesCA.submit` writes ``<outbox>/<node>.csr`` and an
``INSTRUCTIONS.txt``; :meth:`FilesCA.collect` reads every certificate in the inbox (PEM with
LF or CRLF, DER, PKCS#7, full-chain bundles; any file names) and picks, for each node, the
certificate whose public key is the CSR's, with the CA certificates of its issuance path.

The module also holds small helpers the other adapters share: :func:`issuer_path`,
:func:`issued_by`. File names built from node names go through
:func:`cckit._internal.fs.safe_name`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from .. import certs
from .._internal.fs import atomic_write, safe_name
from ..errors import CertificateLoadError
from .base import CertificateAuthority, SignedCertificate, SigningKey

__all__ = [
    "FilesCA",
    "issued_by",
    "issuer_path",
]

INSTRUCTIONS = "INSTRUCTIONS.txt"
CERT_SUFFIXES = (".pem", ".crt", ".cer", ".der", ".p7b", ".p7c", ".cert")
#: files in the inbox that are never certificates: ignored, like dotfiles
_IGNORED_NAMES = {"thumbs.db", "desktop.ini", "instructions.txt"}


# --------------------------------------------------------------------------- shared helpers




def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """``issuer`` is named as ``cert``'s issuer and its key verifies ``cert``'s signature."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _valid_now(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def issuer_path(
    leaf: x509.Certificate, pool: Iterable[x509.Certificate], *, now: dt.datetime | None = None
) -> tuple[x509.Certificate, ...]:
    """The CA certificates from ``pool`` that issued ``leaf``, nearest first, the root last.

    Each step needs the issuer's subject to equal the certificate's issuer name *and* the
    signature to verify; certificates of ``pool`` outside this path are left out. When several
    certificates qualify (a renewed CA with the same name), a currently valid one wins, then
    the newest. Stops at a self-signed certificate or when no issuer is in ``pool``.
    """
    now = now or dt.datetime.now(dt.UTC)
    cas = _dedupe(c for c in pool if certs.is_ca(c))
    path: list[x509.Certificate] = []
    seen = {certs.fingerprint_sha256(leaf)}
    current = leaf
    while True:
        if current is not leaf and issued_by(current, current):
            break  # reached a self-signed root
        candidates = [c for c in cas if certs.fingerprint_sha256(c) not in seen
                      and issued_by(current, c)]
        if not candidates:
            break
        candidates.sort(key=lambda c: (_valid_now(c, now), c.not_valid_before_utc), reverse=True)
        current = candidates[0]
        seen.add(certs.fingerprint_sha256(current))
        path.append(current)
    return tuple(path)


def _dedupe(items: Iterable[x509.Certificate]) -> list[x509.Certificate]:
    out: dict[str, x509.Certificate] = {}
    for c in items:
        out.setdefault(certs.fingerprint_sha256(c), c)
    return list(out.values())


def _csr_pem(csr: x509.CertificateSigningRequest) -> bytes:
    return csr.public_bytes(serialization.Encoding.PEM)


# --------------------------------------------------------------------------- the adapter


class FilesCA(CertificateAuthority):
    """CSRs go to an outbox, signed certificates come back through an inbox.

    ``outbox`` receives ``<node>.csr`` and ``INSTRUCTIONS.txt``; ``inbox`` is where the person
    puts what the CA returned: each node's certificate and the root and intermediate CA
    certificates, under any file names, in PEM, DER or PKCS#7, separately or in one bundle.
    Only the top level of the inbox is read; dotfiles, subfolders and README/INSTRUCTIONS files
    are ignored. Any other file that is not a certificate stops :meth:`collect` with an error
    naming it (a damaged certificate must not be skipped silently).
    """

    name = "files"
    path_options = ("outbox", "inbox", "issuing_cert")

    @classmethod
    def unattended(cls, options: Mapping[str, Any]) -> str | None:
        return ("it waits for a person to take the CSRs from its outbox to a CA and put the "
                "signed certificates in its inbox")

    def __init__(self, outbox: str | Path, inbox: str | Path, *, site: str = "site",
                 issuing_cert: str | Path | None = None) -> None:
        self.outbox = Path(outbox)
        self.inbox = Path(inbox)
        self.site = site
        #: the CA's issuing certificate, for :meth:`signing_key` before anything came back
        self.issuing_cert = Path(issuing_cert) if issuing_cert else None

    # ------------------------------------------------------------------ submit

    def csr_path(self, node: str) -> Path:
        return self.outbox / f"{safe_name(node)}.csr"

    def submit(self, node: str, csr: x509.CertificateSigningRequest) -> None:
        """Write ``<outbox>/<node>.csr`` (only if it changed) and refresh the instructions."""
        path = self.csr_path(node)
        data = _csr_pem(csr)
        try:
            current = path.read_bytes()
        except FileNotFoundError:
            current = None
        if current != data:
            atomic_write(path, data)
        self.inbox.mkdir(parents=True, exist_ok=True)
        text = self.instructions().encode("utf-8")
        ipath = self.outbox / INSTRUCTIONS
        try:
            unchanged = ipath.read_bytes() == text
        except FileNotFoundError:
            unchanged = False
        if not unchanged:
            atomic_write(ipath, text)

    def instructions(self) -> str:
        """The text of ``INSTRUCTIONS.txt`` for every CSR now in the outbox."""
        lines = [
            f"Certificate signing requests for site {self.site!r}",
            "=" * 60,
            "",
            "Have each CSR below signed by the CA, for a TLS server certificate",
            "(the Cisco tomcat-ECDSA certificate of each node).",
            "",
            "IMPORTANT: the CA must sign with an EC key (ECDSA). An ECDSA certificate signed",
            "with RSA is not presented to clients (and on SocialMiner it breaks chat and",
            "email); cckit refuses to upload one.",
            "Keep the subject and the subject alternative names (SANs) exactly as requested.",
            "",
            "CSRs:",
        ]
        for path in sorted(self.outbox.glob("*.csr")):
            info = certs.describe_csr(certs.load_csr(path))
            lines += [
                f"  {path.name}",
                f"    CN:   {info['cn'] or '(none)'}",
                f"    SANs: {info['sans'] or '(none)'}",
                f"    key:  {info['key']}",
                f"    public key SHA-256: {info['public_key_sha256']}",
            ]
        lines += [
            "",
            "Bring back, into this folder:",
            f"  {self.inbox.resolve()}",
            "  - the signed certificate for each CSR above (file names do not matter: each",
            "    certificate is matched to its node by its public key);",
            "  - the CA's root certificate and any intermediate CA certificates.",
            "  Accepted formats: .pem .crt .cer .der .p7b (PEM or DER, single certificates,",
            "  PKCS#7 bundles or a full chain in one file). Do not bring private keys.",
            "",
            "Then run the runbook again: it picks up where it stopped.",
            "",
        ]
        return "\n".join(lines)

    # ------------------------------------------------------------------ collect

    def _inbox_files(self) -> list[Path]:
        if not self.inbox.is_dir():
            return []
        out = []
        for p in sorted(self.inbox.iterdir()):
            low = p.name.lower()
            if (p.name.startswith(".") or low.startswith("readme") or low in _IGNORED_NAMES
                    or low.endswith("~") or not p.is_file()):
                continue
            out.append(p)
        return out

    def load_inbox(self) -> list[tuple[Path, list[x509.Certificate]]]:
        """Every certificate file of the inbox with what it holds.

        :class:`CertificateLoadError` lists every file that is not a readable certificate.
        """
        loaded: list[tuple[Path, list[x509.Certificate]]] = []
        problems: list[tuple[Path, str]] = []
        for path in self._inbox_files():
            try:
                loaded.append((path, certs.load_certificates(path)))
            except CertificateLoadError as e:
                problems.append((path, self._explain(path, e)))
        if problems:
            listing = "\n".join(f"  - {p.name}: {why}" for p, why in problems)
            raise CertificateLoadError(
                f"the CA inbox holds {len(problems)} file(s) that are not readable "
                f"certificates:\n{listing}",
                file=str(problems[0][0]),
                hint=(
                    f"if a file is a damaged certificate, get it again from the CA; if it does "
                    f"not belong there, move it out of {self.inbox} (only certificates go in "
                    "the inbox; subfolders and dotfiles are not read); then rerun"
                ),
            )
        return loaded

    @staticmethod
    def _explain(path: Path, error: CertificateLoadError) -> str:
        try:
            with path.open("rb") as f:
                head = f.read(4)
        except OSError:
            head = b""
        if head.startswith(b"PK\x03\x04"):
            return "a zip archive: extract the certificates it holds into the inbox"
        why = error.message
        if path.suffix.lower() not in CERT_SUFFIXES:
            why += " (not a certificate file: does it belong in the inbox?)"
        return why

    def collect(self, node: str, csr: x509.CertificateSigningRequest) -> SignedCertificate | None:
        """The certificate in the inbox for this CSR's key, with its issuer chain; or None."""
        loaded = self.load_inbox()
        want = certs.public_key_sha256(csr)
        pool: list[x509.Certificate] = []
        origin: dict[str, Path] = {}
        for path, found in loaded:
            for c in found:
                origin.setdefault(certs.fingerprint_sha256(c), path)
                pool.append(c)
        pool = _dedupe(pool)
        leaves = [c for c in pool if not certs.is_ca(c) and certs.public_key_sha256(c) == want]
        if not leaves:
            return None
        now = dt.datetime.now(dt.UTC)

        def rank(c: x509.Certificate) -> tuple[bool, bool, dt.datetime]:
            chain = issuer_path(c, pool, now=now)
            complete = bool(chain) and issued_by(chain[-1], chain[-1])
            return complete, _valid_now(c, now), c.not_valid_before_utc

        leaf = max(leaves, key=rank)
        return SignedCertificate(
            node=node,
            certificate=leaf,
            chain=issuer_path(leaf, pool, now=now),
            source=str(origin[certs.fingerprint_sha256(leaf)]),
        )

    def signing_key(self) -> SigningKey | None:
        """From ``issuing_cert`` when given, else from the inbox: the issuer of a signed
        certificate there, or the lowest CA certificate (the one that issued no other)."""
        if self.issuing_cert is not None:
            return SigningKey.of(certs.load_certificates(self.issuing_cert)[0],
                                 f"the issuing certificate {self.issuing_cert}")
        pool = _dedupe(c for _, found in self.load_inbox() for c in found)
        for leaf in (c for c in pool if not certs.is_ca(c)):
            path = issuer_path(leaf, pool)
            if path:
                return SigningKey.of(path[0], f"the issuer of {certs.describe(leaf).subject_cn}"
                                     f" in the inbox {self.inbox}")
        cas = [c for c in pool if certs.is_ca(c)]
        lowest = [c for c in cas if not any(o is not c and issued_by(o, c) for o in cas)]
        if lowest:
            return SigningKey.of(lowest[0], f"the lowest CA certificate in the inbox "
                                 f"{self.inbox}")
        return None

    # ------------------------------------------------------------------ text

    def describe(self) -> str:
        return f"files CA: CSRs in {self.outbox}, certificates from {self.inbox}"

    def waiting_hint(self) -> str:
        return (
            f"take the CSRs in {self.outbox} to the CA (see {self.outbox / INSTRUCTIONS}); put "
            f"the signed certificates, the root and any intermediate CA certificates in "
            f"{self.inbox} (any file names), then rerun"
        )
