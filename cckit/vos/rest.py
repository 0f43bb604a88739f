"""certmgr REST (VOS 14+): the certificate operations over HTTPS with the OS admin.

Cisco's Certificate Management REST API exists only on VOS 14+ products (CUCM, IM&P, Unity
Connection, CER); UCCX/SocialMiner 11.5 have none, so this is the optional second transport.
It covers what the API offers (DESIGN.md, "certmgr REST"):

* ``POST /platformcom/api/v1/certmgr/config/csr`` -> ``{"csr": PEM}``
* ``POST .../identity/certificates`` ``{"service", "certificates": [PEM, ...]}``
* ``POST .../trust/certificates`` ``{"service": ["tomcat"], "certificates", "description"}``
* ``GET .../trust/certificate?service=tomcat`` -> a list of trust entries

What certmgr does not offer (reading a pending CSR back, the own-certificate listing,
``show version active``, service restart and status, COP install, reboot) goes to the
node's VOS CLI over SSH, which every VOS node has: ``connect`` hands this transport a way
to open it. Without one, those operations raise :class:`NotSupported` naming the CLI.
Pending CSRs are therefore always the node's own, never a copy kept by this process.

TLS is always verified, one of three ways (never ``verify=False``):

1. ``rest.cafile``: the chain must verify against that bundle, and the certificate must name
   ``node.host`` (the TCP connection goes to ``node.address``; SNI and the hostname check use
   ``node.host``);
2. ``rest.fingerprint``: the leaf certificate's SHA-256 must equal the pinned one, checked by
   urllib3 (``assert_fingerprint``) during the handshake, before any credential is sent;
3. neither: the CA bundle requests uses by default (certifi), hostname ``node.host``.

Vocabulary: certmgr calls a certificate unit (``tomcat``, ``tomcat-ECDSA``) a "service";
cckit says *unit* everywhere and keeps "service" for what ``utils service`` restarts. The
JSON field keeps certmgr's name.

The session ignores proxy/CA/netrc environment variables (``trust_env = False``) so that
what the site file says is exactly what is enforced.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from requests.adapters import HTTPAdapter

from .. import certs
from ..credentials import Secret, redact
from ..errors import (
    AuthenticationError,
    CommandError,
    ConnectError,
    HostKeyError,
    InputError,
    TransportError,
)
from ..sites import CopRepository, Node
from ..topology import TOMCAT
from .base import ECDSA_UNIT, NotSupported, StoredCert, Transport, VersionInfo

__all__ = ["API_BASE", "RestTransport", "normalize_fingerprint"]

log = logging.getLogger("cckit.vos.rest")

API_BASE = "/platformcom/api/v1/certmgr/config"
TRUST_SERVICE = "tomcat"

_EC_KEY_SIZES = {256: 256, 384: 384, 521: 512}  # key size -> weakest matching hash (bits)
_HASHES = {"sha256": 256, "sha384": 384, "sha512": 512}
_UNITS = {"tomcat": "rsa", "tomcat-ecdsa": "ec"}



def normalize_fingerprint(value: str) -> str:
    """A SHA-256 fingerprint as 64 lower-case hex digits (colons, spaces optional on input)."""
    hexdigits = re.sub(r"[\s:]", "", value).lower()
    if not re.fullmatch(r"[0-9a-f]{64}", hexdigits):
        raise InputError(
            "rest.fingerprint is not a SHA-256 fingerprint (64 hex digits, colons optional)",
            hint="copy the SHA-256 fingerprint of the node's tomcat certificate from OS Admin "
            "(Show > Certificates) or `openssl x509 -noout -fingerprint -sha256`",
        )
    return hexdigits


class _TLSAdapter(HTTPAdapter):
    """Checks the peer as the site file says: pinned leaf fingerprint, or CA + hostname.

    With a fingerprint, urllib3 does not verify the chain (a pinned VOS certificate is
    usually self-signed) but compares the leaf's SHA-256 during the handshake
    (``assert_fingerprint``); the connection counts as verified. Otherwise the chain is
    verified as requests does and the hostname checked against ``server_hostname``.
    """

    def __init__(self, *, fingerprint: str | None, server_hostname: str | None) -> None:
        self._fingerprint = fingerprint
        self._server_hostname = server_hostname
        super().__init__(max_retries=0)

    def _tls_kwargs(self, kw: dict[str, Any]) -> dict[str, Any]:
        if self._server_hostname:
            kw["server_hostname"] = self._server_hostname
        if self._fingerprint:
            kw["assert_fingerprint"] = self._fingerprint
            kw["cert_reqs"] = "CERT_NONE"
            kw.pop("ca_certs", None)
            kw.pop("ca_cert_dir", None)
        return kw

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                         **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, **self._tls_kwargs(pool_kwargs))

    def build_connection_pool_key_attributes(self, request, verify, cert=None):  # type: ignore[no-untyped-def]
        # requests >= 2.32 builds the pool's TLS settings per request from ``verify``
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert)
        return host_params, self._tls_kwargs(pool_kwargs)

    def cert_verify(self, conn, url, verify, cert):  # type: ignore[no-untyped-def]
        super().cert_verify(conn, url, verify, cert)
        if self._server_hostname and hasattr(conn, "server_hostname"):
            conn.server_hostname = self._server_hostname
        if self._fingerprint:
            conn.cert_reqs = "CERT_NONE"
            conn.ca_certs = None
            conn.ca_cert_dir = None
            conn.assert_fingerprint = self._fingerprint


class RestTransport(Transport):
    """certmgr REST on one VOS 14+ node (``node.rest`` gives the port and how to trust it);
    ``cli`` opens the node's CLI for what certmgr does not offer."""

    commands: ClassVar[Mapping[str, str]] = {
        "generate_csr": "POST " + API_BASE + "/csr (service {unit})",
        "upload_trust": "POST " + API_BASE + "/trust/certificates (service tomcat)",
        "upload_identity": "POST " + API_BASE + "/identity/certificates (service {unit})",
        "list_trust": "GET " + API_BASE + "/trust/certificate?service=tomcat",
        "list_csr": "(CLI) show csr list own",
        "show_csr": "(CLI) show csr own {unit}/{unit}.csr",
        "list_own": "(CLI) show cert list own",
        "show_own": "(CLI) show cert own {unit}/{unit}.pem",
        "version": "(CLI) show version active",
        "restart": "(CLI) utils service restart {service}",
        "install_cop": "(CLI) utils system upgrade initiate",
    }

    def __init__(
        self,
        node: Node,
        username: str,
        password: Secret,
        *,
        timeout: float = 30.0,
        check: bool = True,
        cli: Callable[[], Transport] | None = None,
    ) -> None:
        if node.rest is None:
            raise InputError(
                "the node has no rest: settings", node=node.name,
                hint="add rest: {port: N, cafile: FILE | fingerprint: SHA256} to the node in "
                "the site file, or use transport: ssh",
            )
        self.node = node
        self.timeout = timeout
        self._cli_factory = cli
        self._cli: Transport | None = None
        self._username = username
        self._password = password
        rest = node.rest
        self._cafile = rest.cafile
        self._fingerprint = normalize_fingerprint(rest.fingerprint) if rest.fingerprint else None
        if self._cafile is not None and not self._fingerprint and not self._cafile.is_file():
            raise InputError(
                f"rest.cafile {self._cafile} does not exist", node=node.name,
                file=str(self._cafile),
                hint="point rest.cafile at a PEM bundle of the CA (or the self-signed "
                "certificate) that the node's HTTPS port presents",
            )
        addr = node.address
        host = f"[{addr}]" if ":" in addr and not addr.startswith("[") else addr
        self.base_url = f"https://{host}:{rest.port}{API_BASE}"
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy/CA/netrc from the environment
        self._session.auth = _SecretBasicAuth(username, password)
        self._session.headers.update({"Accept": "application/json"})
        self._session.verify = str(self._cafile) if self._cafile and not self._fingerprint \
            else True
        adapter = _TLSAdapter(fingerprint=self._fingerprint, server_hostname=node.host or None)
        self._session.mount("https://", adapter)
        self._session.mount("http://", _RefuseHTTP())
        if check:
            try:
                self._check()
            except BaseException:
                self._session.close()
                raise

    def __repr__(self) -> str:
        how = ("fingerprint" if self._fingerprint else
               f"cafile={self._cafile}" if self._cafile else "default CAs")
        return (f"RestTransport(node={self.node.name!r}, url={self.base_url!r}, "
                f"user={self._username!r}, tls={how})")

    # ----------------------------------------------------------------- plumbing

    def _check(self) -> None:
        """One cheap authenticated read, so TLS and login problems surface on connect."""
        self._request("GET", "/trust/certificate", params={"service": TRUST_SERVICE})

    def close(self) -> None:
        self._session.close()
        if self._cli is not None:
            self._cli.close()
            self._cli = None

    def _via_cli(self, what: str, cli: str) -> Transport:
        """The node's CLI for what certmgr does not offer (opened on first use)."""
        if self._cli is None:
            if self._cli_factory is None:
                raise NotSupported(
                    f"{what} is not possible over certmgr REST", node=self.node.name,
                    hint=f"open this transport with a CLI (cckit.vos.connect does; CLI `{cli}`)")
            self._cli = self._cli_factory()
        return self._cli

    def _request(self, method: str, path: str, *, json: Any = None,
                 params: dict[str, str] | None = None, unit: str | None = None) -> Any:
        node = self.node
        url = self.base_url + path
        where = f"{node.address}:{node.rest.port if node.rest else '?'}"
        log.debug("%s: %s %s", node.name, method, path)
        try:
            resp = self._session.request(method, url, json=json, params=params,
                                         timeout=self.timeout, allow_redirects=False)
        except requests.exceptions.SSLError as e:
            raise self._tls_error(e, where) from None
        except requests.exceptions.ConnectTimeout:
            raise ConnectError(
                f"timed out after {self.timeout:.0f}s connecting to {where} (certmgr REST)",
                node=node.name, hint="check the address, rest.port, firewall and that the "
                "node (and its Tomcat) is up",
            ) from None
        except requests.exceptions.ConnectionError as e:
            raise ConnectError(
                f"cannot reach {where} (certmgr REST): {_reason(e)}", node=node.name,
                hint="check the address, rest.port, firewall and that the node (and its "
                "Tomcat) is up",
            ) from None
        except requests.exceptions.Timeout:
            raise TransportError(
                f"no answer from {where} within {self.timeout:.0f}s for {method} {path}",
                node=node.name, unit=unit,
                hint="the node is slow or stuck; check it (Tomcat status) and rerun",
            ) from None
        except requests.exceptions.RequestException as e:
            raise TransportError(f"certmgr REST request failed: {_reason(e)}",
                                 node=node.name, unit=unit) from None
        if resp.status_code == 401:
            raise AuthenticationError(
                f"login as {self._username!r} refused by the certmgr REST API (HTTP 401: wrong "
                "password, or account locked after failed attempts)", node=node.name,
                hint="check the credential named in the site file; wait if the account is "
                "locked",
            )
        if resp.status_code == 403:
            raise AuthenticationError(
                f"{self._username!r} may not use the certmgr REST API (HTTP 403)",
                node=node.name, hint="use the OS administrator account (the one for the CLI)",
            )
        if not 200 <= resp.status_code < 300:
            message = _server_message(resp)
            raise CommandError(
                f"{method} {path} refused (HTTP {resp.status_code}): {message}",
                output=redact(resp.text[:4000]), node=node.name, unit=unit,
            )
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise CommandError(f"{method} {path} answered with something that is not JSON",
                               output=redact(resp.text[:4000]), node=node.name,
                               unit=unit) from None

    def _tls_error(self, e: Exception, where: str) -> HostKeyError:
        text = redact(str(e))
        if self._fingerprint and "fingerprint" in text.lower():
            m = re.search(r"got ['\"]?([0-9a-fA-F:]{64,})", text)
            got = f" (it presents {_colons(m.group(1))})" if m else ""
            return HostKeyError(
                f"the TLS certificate of {where} does not match the pinned SHA-256 fingerprint"
                f"{got}; refusing to send the credential", node=self.node.name,
                hint="if the node's tomcat certificate was renewed, confirm the new fingerprint "
                "with the server's admin and update rest.fingerprint in the site file; "
                "otherwise treat it as an attack",
            )
        if "hostname" in text.lower() or "doesn't match" in text.lower():
            return HostKeyError(
                f"the TLS certificate of {where} is not valid for {self.node.host!r} "
                "(hostname mismatch)", node=self.node.name,
                hint="the certificate must name the node's host (CN or subject alternative "
                "name); fix host: in the site file, or pin rest.fingerprint instead",
            )
        source = f"rest.cafile {self._cafile}" if self._cafile else "the default CA bundle"
        return HostKeyError(
            f"the TLS certificate of {where} is not trusted by {source}: {_reason(e)}",
            node=self.node.name,
            hint="set rest.cafile to the CA (or self-signed tomcat certificate) the node "
            "presents, or pin its SHA-256 with rest.fingerprint, after checking it with the "
            "server's admin",
        )

    # ----------------------------------------------------------------- certificates

    def _trust_entries(self) -> list[dict[str, Any]]:
        data = self._request("GET", "/trust/certificate", params={"service": TRUST_SERVICE},
                             unit="tomcat-trust")
        if isinstance(data, dict):  # tolerate {"certificates": [...]}-style wrappers
            for key in ("certificates", "trustCertificates", "data", "items"):
                if isinstance(data.get(key), list):
                    data = data[key]
                    break
        if not isinstance(data, list):
            raise CommandError("unexpected answer listing tomcat-trust", output=str(data)[:2000],
                               node=self.node.name, unit="tomcat-trust")
        return [d for d in data if isinstance(d, dict)]

    def _entry(self, d: dict[str, Any]) -> StoredCert:
        pem = d.get("certificate") or d.get("pem") or ""
        cert = None
        if pem:
            cert = certs.load_certificates(str(pem), source=f"{self.node.name}:trust")[0]
        file = str(d.get("filename") or d.get("fileName") or d.get("name") or "")
        if file and "/" not in file:
            file = f"tomcat-trust/{file}"
        issuer = d.get("issuerName") or (cert.issuer.rfc4514_string() if cert else "")
        return StoredCert("trust", file, "", unit="tomcat-trust", certificate=cert,
                          issuer=_cn_of(str(issuer)) or None)

    def list_certificates(self, store: str = "own") -> list[StoredCert]:
        if store not in ("own", "trust"):
            raise ValueError("store must be 'own' or 'trust'")
        if store == "own":
            return self._via_cli("listing the own certificates",
                                 "show cert list own").list_certificates("own")
        return [self._entry(d) for d in self._trust_entries()]

    def get_certificate(self, store: str, file: str) -> x509.Certificate:
        if store != "trust":
            return self._via_cli(f"reading the own certificate {file}",
                                 f"show cert own {file}").get_certificate(store, file)
        want = file if "/" in file else f"tomcat-trust/{file}"
        for entry in self.list_certificates("trust"):
            if entry.file == want and entry.certificate is not None:
                return entry.certificate
        raise CommandError(f"no certificate {want} in tomcat-trust", node=self.node.name,
                           file=want, unit="tomcat-trust",
                           hint="list the trust store to see the file names")

    def pending_csr(self, unit: str = ECDSA_UNIT) -> x509.CertificateSigningRequest | None:
        """The node's pending CSR, read over the CLI: certmgr only returns a CSR when it
        generates one, and the node may hold one generated in OS Admin or over SSH."""
        return self._via_cli(f"reading back the pending CSR for {unit}",
                             f"show csr own {unit}/{unit}.csr").pending_csr(unit)

    def csr_parameters(self, unit: str = ECDSA_UNIT, *, key_size: int | None = None,
                       hash_algorithm: str | None = None) -> dict[str, Any]:
        """The JSON body :meth:`generate_csr` posts (validated)."""
        kind = _UNITS.get(unit.lower())
        if kind is None:
            raise InputError(f"unknown certificate unit {unit!r} (use tomcat or tomcat-ECDSA)",
                             node=self.node.name, unit=unit)
        hash_name = re.sub(r"[^a-z0-9]", "", (hash_algorithm or "").lower()) or (
            "sha384" if kind == "ec" else "sha256")
        if hash_name not in _HASHES:
            raise InputError(f"hash algorithm {hash_algorithm!r} is not offered "
                             "(use SHA256, SHA384 or SHA512)", node=self.node.name, unit=unit)
        host = self.node.host
        short, _, domain = host.partition(".")
        if kind == "ec":
            size = key_size or 384
            if size not in _EC_KEY_SIZES:
                raise InputError(f"{unit} key size must be 256, 384 or 521, not {size}",
                                 node=self.node.name, unit=unit)
            if _HASHES[hash_name] < _EC_KEY_SIZES[size]:
                raise InputError(
                    f"hash {hash_name.upper()} is weaker than the {size}-bit EC key; use at "
                    f"least SHA{_EC_KEY_SIZES[size]}", node=self.node.name, unit=unit)
            cn = f"{short}-EC.{domain}" if domain else f"{short}-EC"
            alt = [host, cn] if host != cn else [host]
        else:
            size = key_size or 2048
            if size not in (2048, 3072, 4096):
                raise InputError(f"{unit} key size must be 2048, 3072 or 4096, not {size}",
                                 node=self.node.name, unit=unit)
            cn = host
            alt = [host]
        return {"service": unit, "distribution": "this-server", "commonName": cn,
                "keyType": kind, "keyLength": size, "hashAlgorithm": hash_name,
                "altNames": alt}

    def generate_csr(self, unit: str = ECDSA_UNIT, *, key_size: int | None = None,
                     hash_algorithm: str | None = None) -> x509.CertificateSigningRequest:
        body = self.csr_parameters(unit, key_size=key_size, hash_algorithm=hash_algorithm)
        data = self._request("POST", "/csr", json=body, unit=unit)
        pem = data.get("csr") if isinstance(data, dict) else None
        if not isinstance(pem, str) or "CERTIFICATE REQUEST" not in pem:
            raise CommandError(f"CSR generation for {unit} returned no CSR",
                               output=str(data)[:2000], node=self.node.name, unit=unit)
        return certs.load_csr(pem, source=f"{self.node.name}:{unit}.csr")

    def upload_trust(self, cert: x509.Certificate) -> str:
        """Add a CA to tomcat-trust; returns its file name (``tomcat-trust/<CN>_<serial>.pem``)."""
        reasons = certs.check_trust_certificate(cert)
        if reasons:
            raise InputError(reasons[0], node=self.node.name, unit="tomcat-trust")
        info = certs.describe(cert)
        body = {"service": [TRUST_SERVICE], "certificates": [_pem(cert)],
                "description": f"{info.subject_cn} (cckit)"}
        data = self._request("POST", "/trust/certificates", json=body, unit="tomcat-trust")
        files = data.get("files") if isinstance(data, dict) else None
        if isinstance(files, list) and files and isinstance(files[0], str):
            name = files[0]
            return name if "/" in name else f"tomcat-trust/{name}"
        # The answer does not name the file: find it by fingerprint.
        name = self.trust_files([cert]).get(certs.fingerprint_sha256(cert))
        if name:
            return name
        raise CommandError("the CA was accepted but is not listed in tomcat-trust",
                           output=str(data)[:2000], node=self.node.name, unit="tomcat-trust")

    def upload_identity(self, unit: str, cert: x509.Certificate, ca_file: str) -> None:
        """Import the signed certificate for ``unit``.

        certmgr takes the chain, not an issuer file name: the node finds the issuer in
        tomcat-trust itself, so ``ca_file`` only documents the intent here.
        """
        if unit.lower() not in _UNITS:
            raise InputError(f"unknown certificate unit {unit!r} (use tomcat or tomcat-ECDSA)",
                             node=self.node.name, unit=unit)
        body = {"service": unit, "certificates": [_pem(cert)]}
        self._request("POST", "/identity/certificates", json=body, unit=unit)
        log.info("%s: imported %s (issuer %s, in %s)", self.node.name, unit,
                 certs.describe(cert).issuer_cn, ca_file)

    # ----------------------------------------------------------------- not in certmgr

    def version(self) -> VersionInfo:
        return self._via_cli("reading the active version and installed COPs",
                             "show version active").version()

    def restart_service(self, name: str = TOMCAT, *, timeout: float = 600) -> None:
        self._via_cli(f"restarting {name}", f"utils service restart {name}").restart_service(
            name, timeout=timeout)

    def service_status(self) -> dict[str, str]:
        return self._via_cli("reading the service status", "utils service list"
                             ).service_status()

    def install_cop(self, file: str, repository: CopRepository, username: str,
                    password: Secret, *, timeout: float = 900) -> bool:
        return self._via_cli(f"installing the COP {file}", "utils system upgrade initiate"
                             ).install_cop(file, repository, username, password,
                                           timeout=timeout)

    def reboot(self, *, timeout: float = 900) -> None:
        self._via_cli("restarting the node", "utils system restart").reboot(timeout=timeout)


class _SecretBasicAuth(requests.auth.AuthBase):
    """HTTP Basic whose password is revealed only when a request is sent."""

    def __init__(self, username: str, password: Secret) -> None:
        self.username = username
        self._password = password

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return requests.auth.HTTPBasicAuth(self.username, self._password.reveal())(r)

    def __repr__(self) -> str:
        return f"_SecretBasicAuth({self.username!r}, {self._password!r})"


class _RefuseHTTP(HTTPAdapter):
    """Never send the credential in clear text (e.g. after a redirect to http://)."""

    def send(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise requests.exceptions.InvalidURL("certmgr REST is only spoken over HTTPS")


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode()


def _colons(hexdigits: str) -> str:
    h = hexdigits.replace(":", "").upper()
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


def _cn_of(rfc4514: str) -> str:
    m = re.search(r"(?:^|,)CN=((?:\\.|[^,])+)", rfc4514)
    return m.group(1).replace("\\", "") if m else rfc4514


def _reason(e: Exception) -> str:
    """The innermost useful message of a requests/urllib3 exception, without secrets."""
    text = str(e)
    for pat in (r"\[SSL: [A-Z_]+\][^()'\"]*", r"certificate verify failed: [^()'\"]*",
                r"Fingerprints did not match[^()'\"]*", r"\[Errno -?\d+\] [^()'\"]*",
                r"Connection refused", r"timed out"):
        m = re.search(pat, text)
        if m:
            return redact(m.group(0).strip(" .,"))
    return redact(text[:300])


def _server_message(resp: requests.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        data = None
    msg = None
    if isinstance(data, dict):
        for key in ("error", "message", "errorMessage", "detail", "errors"):
            v = data.get(key)
            if isinstance(v, list):
                v = "; ".join(str(x.get("message", x)) if isinstance(x, dict) else str(x)
                              for x in v)
            if v:
                msg = str(v)
                break
    if msg is None:
        msg = resp.text.strip()[:500] or resp.reason or "no message"
    return redact(msg)

