"""The ``adcs`` CA adapter: Microsoft AD CS web enrollment (``/certsrv``), via ``certsrv``.

Optional: needs ``pip install certsrv`` (MIT, magnuswatn/certsrv; last release 2.1.1, 2018,
pure Python over ``requests``). It is imported only when a request is made.

The password is a :class:`~cckit.credentials.SecretRef`, resolved when the client is built.
TLS verification is always on: ``cafile`` names the CA bundle that signed the AD CS web
server's certificate (without it, the system bundle). ``state_dir`` remembers issued
certificates and pending request ids, so a request an AD CS administrator must approve is
picked up by a later run instead of being submitted again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .. import certs
from .._internal.fs import atomic_write, safe_name
from ..credentials import SecretRef, resolve
from ..errors import AuthenticationError, ConnectError, HostKeyError, InputError, MissingDependency
from .base import CertificateAuthority, SignedCertificate, SigningKey
from .files import issuer_path

__all__ = ["ADCSCA"]


class _DropRequestDumps(logging.Filter):
    """certsrv logs each request's headers at DEBUG, Basic-auth header included: drop those."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Sent ")


def _certsrv() -> Any:
    try:
        import certsrv
    except ImportError:
        raise MissingDependency("the AD CS adapter (or use the 'files' adapter)",
                                "certsrv") from None
    log = logging.getLogger("certsrv")
    if not any(isinstance(f, _DropRequestDumps) for f in log.filters):
        log.addFilter(_DropRequestDumps())
    return certsrv


class ADCSCA(CertificateAuthority):
    """Submit CSRs to an AD CS web enrollment server and fetch the certificates and chain."""

    name = "adcs"
    state_option = "state_dir"
    path_options = ("state_dir", "cafile")

    @classmethod
    def unattended(cls, options: Mapping[str, Any]) -> str | None:
        # a template that needs a CA manager's approval makes a run wait (WaitingForCA); the
        # next run collects the certificate: no person at the node is needed either way
        return None

    def __init__(
        self,
        server: str,
        template: str,
        *,
        username: str,
        password: SecretRef,
        state_dir: str | Path,
        cafile: str | Path | None = None,
        auth_method: str = "basic",
        timeout: float = 30,
    ) -> None:
        if not server or "/" in server:
            raise InputError(f"AD CS server must be a host name, not {server!r}",
                             hint="give the FQDN of the web enrollment server, "
                             "e.g. ca.corp.example")
        if not template:
            raise InputError("AD CS certificate template not given",
                             hint="name the template that issues ECDSA web server certificates")
        if auth_method not in ("basic", "ntlm"):
            raise InputError(f"AD CS auth_method must be 'basic' or 'ntlm', not {auth_method!r}")
        self.server = server
        self.template = template
        self.username = username
        self.password = password
        self.state_dir = Path(state_dir)
        self.cafile = Path(cafile) if cafile else None
        self.auth_method = auth_method
        self.timeout = timeout
        self._client: Any = None
        self._chain: tuple[x509.Certificate, ...] | None = None

    # ------------------------------------------------------------------ plumbing

    def _connect(self) -> Any:
        if self._client is None:
            mod = _certsrv()
            if self.cafile is not None and not self.cafile.is_file():
                raise InputError("the CA bundle for the AD CS server does not exist",
                                 file=str(self.cafile),
                                 hint="give the PEM file of the CA that signed the AD CS "
                                 "web server's certificate")
            secret = resolve(self.password)
            self._client = mod.Certsrv(
                self.server, self.username, secret.reveal(), auth_method=self.auth_method,
                cafile=str(self.cafile) if self.cafile else None, timeout=self.timeout,
            )
        return self._client

    def _call(self, what: str, fn: Any, *args: Any, node: str | None = None, **kw: Any) -> Any:
        """Run a certsrv call, turning transport failures into cckit errors."""
        try:
            return fn(*args, **kw)
        except Exception as e:
            import requests

            if isinstance(e, requests.exceptions.SSLError):
                raise HostKeyError(
                    f"TLS verification of the AD CS server {self.server} failed while {what}",
                    node=node, hint="give cafile= the CA that signed the web server's "
                    "certificate (verification stays on)") from None
            if isinstance(e, requests.exceptions.HTTPError):
                status = getattr(e.response, "status_code", None)
                if status in (401, 403):
                    raise AuthenticationError(
                        f"the AD CS server refused the credentials of {self.username!r} "
                        f"(HTTP {status}) while {what}", node=node,
                        hint=f"check the password in {self.password.describe()} and that the "
                        f"account may enroll with template {self.template!r}") from None
                raise ConnectError(f"AD CS server {self.server}: HTTP {status} while {what}",
                                   node=node) from None
            if isinstance(e, requests.exceptions.RequestException):
                raise ConnectError(
                    f"cannot reach the AD CS server {self.server} while {what}: "
                    f"{type(e).__name__}", node=node,
                    hint="check the name, the network path and that /certsrv is served "
                    "over https") from None
            raise

    def _paths(self, node: str) -> tuple[Path, Path]:
        stem = safe_name(node)
        return self.state_dir / f"{stem}.pem", self.state_dir / f"{stem}.pending.json"

    def _pending(self, node: str) -> dict[str, str] | None:
        try:
            data = json.loads(self._paths(node)[1].read_text("utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _store(self, node: str, cert_bytes: bytes) -> None:
        cert = certs.load_certificates(cert_bytes, source=f"AD CS {self.server}")[0]
        issued, pending = self._paths(node)
        atomic_write(issued, cert.public_bytes(serialization.Encoding.PEM))
        pending.unlink(missing_ok=True)

    def chain_pool(self) -> tuple[x509.Certificate, ...]:
        """The CA certificates the server publishes (its PKCS#7 chain), fetched once."""
        if self._chain is None:
            cache = self.state_dir / "ca-chain.p7b"
            if cache.exists():
                self._chain = tuple(certs.load_certificates(cache))
            else:
                client = self._connect()
                raw = self._call("fetching the CA chain", client.get_chain, encoding="bin")
                self._chain = tuple(certs.load_certificates(raw, source=f"AD CS {self.server}"))
                atomic_write(cache, raw)
        return self._chain

    # ------------------------------------------------------------------ the adapter

    def submit(self, node: str, csr: x509.CertificateSigningRequest) -> None:
        if self.collect(node, csr) is not None:
            return
        want = certs.public_key_sha256(csr)
        pending = self._pending(node)
        if pending and pending.get("public_key_sha256") == want:
            return  # already waiting for approval: do not submit a duplicate request
        mod = _certsrv()
        client = self._connect()
        pem = csr.public_bytes(serialization.Encoding.PEM).decode("ascii")
        try:
            got = self._call("submitting the CSR", client.get_cert, pem, self.template,
                             encoding="b64", node=node)
        except mod.CertificatePendingException as e:
            atomic_write(self._paths(node)[1], json.dumps(
                {"req_id": str(e.req_id), "public_key_sha256": want}).encode("utf-8"))
            return
        except mod.RequestDeniedException as e:
            raise InputError(
                f"AD CS denied the request (template {self.template!r}): {e}", node=node,
                hint="check that the template allows this subject/SANs and ECDSA keys, and "
                "that the account may enroll",
            ) from None
        self._store(node, got)

    def collect(self, node: str, csr: x509.CertificateSigningRequest) -> SignedCertificate | None:
        want = certs.public_key_sha256(csr)
        issued, _ = self._paths(node)
        if not issued.exists():
            pending = self._pending(node)
            if not pending or pending.get("public_key_sha256") != want:
                return None
            mod = _certsrv()
            client = self._connect()
            try:
                got = self._call("fetching a pending certificate", client.get_existing_cert,
                                 pending["req_id"], encoding="b64", node=node)
            except mod.CouldNotRetrieveCertificateException as e:
                if "denied" in str(e).lower():
                    raise InputError(
                        f"AD CS request {pending['req_id']} was denied: {e}", node=node,
                        hint="ask the CA administrator why, then rerun (a new request will "
                        "be submitted after the pending record is removed: "
                        f"{self._paths(node)[1]})") from None
                return None  # still waiting for an administrator
            self._store(node, got)
        cert = certs.load_certificates(issued)[0]
        if certs.public_key_sha256(cert) != want:
            return None
        return SignedCertificate(node=node, certificate=cert,
                                 chain=issuer_path(cert, self.chain_pool()),
                                 source=f"AD CS {self.server} template {self.template}")

    def signing_key(self) -> SigningKey:
        """From the CA certificate AD CS publishes (``certnew.cer?ReqID=CACert``): the
        certificate of the CA that signs, whatever root is above it."""
        cache = self.state_dir / "ca-cert.pem"
        if cache.exists():
            cert = certs.load_certificates(cache)[0]
        else:
            client = self._connect()
            raw = self._call("fetching the CA certificate", client.get_ca_cert, encoding="b64")
            cert = certs.load_certificates(raw, source=f"AD CS {self.server}")[0]
            atomic_write(cache, cert.public_bytes(serialization.Encoding.PEM))
        return SigningKey.of(cert, f"the CA certificate AD CS {self.server} publishes "
                             "(certnew.cer)")

    def describe(self) -> str:
        return f"AD CS web enrollment at https://{self.server}/certsrv (template {self.template})"

    def waiting_hint(self) -> str:
        return (f"a request awaits approval by an AD CS administrator on {self.server} "
                f"(request ids in {self.state_dir}/*.pending.json); rerun once it is issued")
