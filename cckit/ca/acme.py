"""The ``acme`` CA adapter: an ACME (RFC 8555) server signs the node's own CSR, proven by DNS-01.

Optional: needs ``pip install cckit[acme]`` (the ``acme`` and ``josepy`` libraries of the
certbot project for the protocol and JOSE, ``dnspython`` for DNS). Imported only when used.

What it does with a node's CSR (generated on the node: the key never leaves it):

1. an order for the names the CSR carries (its CN and DNS SANs, so a multi-server SAN CSR is
   one order and one certificate for every node that sent it),
2. for each name still to prove, the DNS-01 TXT record ``_acme-challenge.<name>`` through a
   pluggable :class:`DnsUpdater` — ``rfc2136`` (dynamic update, TSIG), ``challtestsrv``
   (pebble-challtestsrv's management API, for tests and labs) or ``manual`` (the engineer
   creates the record; the run stops with :class:`~cckit.errors.WaitingForCA` naming it and
   a rerun resumes the same order, like the ``files`` adapter),
3. finalize with the node's CSR, keep the certificate and the chain the server sent.

The only private key cckit makes is the ACME account key, kept in ``state_dir`` (0600, the
folder 0700) and never logged. TLS to the directory is always verified: ``ca_bundle`` names
the CA of a private ACME server (pebble); there is no way to turn verification off.
The root the chain ends at comes from ``roots`` (a PEM file) or the system CA bundle, since
ACME servers send the intermediates only.
"""

from __future__ import annotations

import abc
import datetime as dt
import inspect
import json
import os
import ssl
import time
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .. import certs
from .._internal.fs import atomic_write
from ..credentials import SecretRef, parse_secret_ref, resolve
from ..errors import (
    ConnectError,
    HostKeyError,
    InputError,
    MissingDependency,
    ProcedureError,
)
from .base import CertificateAuthority, SignedCertificate, SigningKey, check_csr_signature
from .files import issuer_path

__all__ = [
    "AcmeCA",
    "ChalltestsrvUpdater",
    "DnsUpdater",
    "ManualUpdater",
    "Rfc2136Updater",
    "TxtRecord",
]

ACCOUNT_KEY = "account.key"
FEATURE = "the ACME CA adapter"


def _acme() -> Any:
    """The acme and josepy modules (a namespace), or MissingDependency with the pip command."""
    try:
        import josepy
        from acme import challenges, client, errors, messages
    except ImportError:
        raise MissingDependency(FEATURE, "acme", "'cckit[acme]'") from None
    return types.SimpleNamespace(jose=josepy, challenges=challenges, client=client,
                                 errors=errors, messages=messages)


def _dns() -> Any:
    try:
        import dns.message
        import dns.name
        import dns.query
        import dns.rcode
        import dns.resolver
        import dns.tsigkeyring
        import dns.update
    except ImportError:
        raise MissingDependency("DNS-01 through DNS (rfc2136 or checking a manual record)",
                                "dnspython", "'cckit[acme]'") from None
    return dns


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and "]" not in port:
        return host.strip("[]"), int(port)
    return text, default_port


# --------------------------------------------------------------------------- DNS updaters


class TxtRecord(tuple[str, str, str]):
    """(the TXT name ``_acme-challenge.<domain>``, the value, the domain it proves)."""

    __slots__ = ()

    def __new__(cls, name: str, value: str, domain: str) -> TxtRecord:
        return super().__new__(cls, (name, value, domain))

    @property
    def name(self) -> str:
        return self[0]

    @property
    def value(self) -> str:
        return self[1]

    @property
    def domain(self) -> str:
        return self[2]

    def __str__(self) -> str:
        return f"{self.name} TXT {self.value}"


class DnsUpdater(abc.ABC):
    """Makes a DNS-01 TXT record visible to the ACME server, and removes it afterwards."""

    name: ClassVar[str]

    @abc.abstractmethod
    def publish(self, node: str, record: TxtRecord, *, asked_before: bool) -> bool:
        """Create ``record``; True when it is in place (the challenge may be answered), False
        when a person still has to act (the run then waits). ``asked_before``: an earlier run
        already asked for this very record."""

    def clear(self, record: TxtRecord) -> None:  # noqa: B027 - optional
        """Remove ``record`` once the server has looked at it (default: leave it)."""

    def describe(self) -> str:
        return self.name


class ChalltestsrvUpdater(DnsUpdater):
    """pebble-challtestsrv's management API (``/set-txt``, ``/clear-txt``): for tests and labs.

    The management API is plain HTTP on the lab host; never point this at anything else."""

    name = "challtestsrv"

    def __init__(self, url: str, *, timeout: float = 10) -> None:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"challtestsrv url must be http(s)://host:port, not {url!r}",
                             hint="give its management address, e.g. http://127.0.0.1:8055")
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _post(self, path: str, body: dict[str, str], node: str | None = None) -> None:
        import requests

        try:
            r = requests.post(f"{self.url}{path}", json=body, timeout=self.timeout)
        except requests.RequestException as e:
            raise ConnectError(f"cannot reach pebble-challtestsrv at {self.url}: "
                               f"{type(e).__name__}", node=node) from None
        if r.status_code != 200:
            raise ConnectError(f"pebble-challtestsrv {path} answered HTTP {r.status_code}",
                               node=node)

    def publish(self, node: str, record: TxtRecord, *, asked_before: bool) -> bool:
        self._post("/set-txt", {"host": record.name + ".", "value": record.value}, node)
        return True

    def clear(self, record: TxtRecord) -> None:
        self._post("/clear-txt", {"host": record.name + "."})

    def describe(self) -> str:
        return f"pebble-challtestsrv at {self.url}"


class Rfc2136Updater(DnsUpdater):
    """RFC 2136 dynamic update to the zone's primary server, signed with TSIG when given."""

    name = "rfc2136"

    def __init__(self, server: str, zone: str, *, port: int = 53,
                 tsig_name: str | None = None,
                 tsig_secret: SecretRef | Mapping[str, Any] | None = None,
                 tsig_algorithm: str = "hmac-sha256", ttl: int = 60,
                 propagation_seconds: float = 0, timeout: float = 10) -> None:
        if not server or not zone:
            raise InputError("rfc2136 needs the primary server and the zone",
                             hint="set dns_options: {server: ..., zone: ...}")
        if (tsig_name is None) != (tsig_secret is None):
            raise InputError("rfc2136: give both tsig_name and tsig_secret, or neither")
        if tsig_secret is not None and not isinstance(tsig_secret, SecretRef):
            # from a site file or papermill parameters: {env: VAR}, {file: PATH}, {keyring: ...}
            tsig_secret, problems = parse_secret_ref(tsig_secret, "dns_options.tsig_secret")
            if problems:
                raise InputError("; ".join(problems), hint="fix ca_options.dns_options")
        self.server, self.port = _host_port(server, port)
        self.zone = zone.rstrip(".") + "."
        self.tsig_name = tsig_name
        self.tsig_secret = tsig_secret
        self.tsig_algorithm = tsig_algorithm
        self.ttl = ttl
        self.propagation_seconds = propagation_seconds
        self.timeout = timeout

    def _send(self, record: TxtRecord, node: str | None, add: bool) -> None:
        dns = _dns()
        zone = dns.name.from_text(self.zone)
        name = dns.name.from_text(record.name)
        if not name.is_subdomain(zone):
            raise InputError(f"{record.name} is not in the zone {self.zone}", node=node,
                             hint="set dns_options.zone to the zone that holds it")
        kw: dict[str, Any] = {}
        if self.tsig_name and self.tsig_secret is not None:
            secret = resolve(self.tsig_secret, node=node)
            kw = {"keyring": dns.tsigkeyring.from_text({self.tsig_name: secret.reveal()}),
                  "keyname": self.tsig_name, "keyalgorithm": self.tsig_algorithm}
        update = dns.update.UpdateMessage(zone, **kw)
        rel = name.relativize(zone)
        if add:
            update.add(rel, self.ttl, "TXT", f'"{record.value}"')
        else:
            update.delete(rel, "TXT", f'"{record.value}"')
        try:
            answer = dns.query.tcp(update, self.server, port=self.port, timeout=self.timeout)
        except Exception as e:  # dnspython raises many types: timeouts, TSIG, sockets
            raise ConnectError(f"dynamic update to {self.server}:{self.port} failed: "
                               f"{type(e).__name__}: {e}", node=node,
                               hint="check the server, the TSIG key and that the zone "
                               "allows updates from this host") from None
        rcode = answer.rcode()
        if rcode != dns.rcode.NOERROR:
            raise ProcedureError(
                f"the DNS server {self.server} refused the update of {record.name} "
                f"({dns.rcode.to_text(rcode)})", node=node,
                hint="check the zone's update policy for this TSIG key")

    def publish(self, node: str, record: TxtRecord, *, asked_before: bool) -> bool:
        self._send(record, node, add=True)
        if self.propagation_seconds:
            time.sleep(self.propagation_seconds)
        return True

    def clear(self, record: TxtRecord) -> None:
        self._send(record, None, add=False)

    def describe(self) -> str:
        return f"RFC 2136 updates to {self.server}:{self.port} (zone {self.zone})"


class ManualUpdater(DnsUpdater):
    """A person creates the record: the run waits and names it; a rerun resumes.

    With ``check`` (the default) a rerun answers the challenge only once the record is seen
    in DNS (through ``nameserver`` ``host[:port]``, else the system resolver): answering too
    early would make the ACME server fail the order. Without it a rerun takes it as done."""

    name = "manual"

    def __init__(self, *, check: bool = True, nameserver: str | None = None,
                 timeout: float = 5) -> None:
        self.check = check
        self.nameserver = _host_port(nameserver, 53) if nameserver else None
        self.timeout = timeout

    def visible(self, record: TxtRecord) -> bool:
        dns = _dns()
        resolver = dns.resolver.Resolver(configure=self.nameserver is None)
        if self.nameserver:
            resolver.nameservers = [self.nameserver[0]]
            resolver.port = self.nameserver[1]
        try:
            answer = resolver.resolve(record.name, "TXT", lifetime=self.timeout,
                                      raise_on_no_answer=False)
        except Exception:  # NXDOMAIN, timeouts: not there (yet)
            return False
        values = {b"".join(r.strings).decode("ascii", "replace") for r in answer}
        return record.value in values

    def publish(self, node: str, record: TxtRecord, *, asked_before: bool) -> bool:
        if not asked_before:
            return False
        return self.visible(record) if self.check else True

    def describe(self) -> str:
        return "manual TXT records"


_UPDATERS: dict[str, type[DnsUpdater]] = {
    u.name: u for u in (ManualUpdater, ChalltestsrvUpdater, Rfc2136Updater)}


def _updater(name: str, options: Mapping[str, Any]) -> DnsUpdater:
    if name not in _UPDATERS:
        raise InputError(f"unknown DNS updater {name!r}",
                         hint=f"set dns to one of {', '.join(sorted(_UPDATERS))}")
    cls = _UPDATERS[name]
    try:
        inspect.signature(cls).bind(**options)
    except TypeError:
        known = [p for p in inspect.signature(cls).parameters]
        raise InputError(f"the {name} DNS updater: unknown or missing dns_options "
                         f"(its options: {', '.join(known)})",
                         hint="fix ca_options.dns_options") from None
    return cls(**options)


# --------------------------------------------------------------------------- the adapter


def csr_names(csr: x509.CertificateSigningRequest) -> list[str]:
    """The DNS names the CSR asks for: its DNS SANs, and its CN when it is a host name."""
    names: list[str] = []
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names.extend(str(n) for n in san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        pass
    for cn in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        value = str(cn.value)
        if "." in value and " " not in value and value not in names:
            names.insert(0, value)
    return names


class AcmeCA(CertificateAuthority):
    """An ACME server signs each node's own CSR after DNS-01 proves its names."""

    name = "acme"
    state_option = "state_dir"
    path_options = ("state_dir", "ca_bundle", "roots")

    @classmethod
    def unattended(cls, options: Mapping[str, Any]) -> str | None:
        if options.get("dns", "manual") == "manual":
            return ("dns: manual waits for a person to create each _acme-challenge TXT record; "
                    "use dns: rfc2136 (a zone that takes dynamic updates)")
        return None

    def __init__(
        self,
        directory: str,
        *,
        state_dir: str | Path,
        dns: str = "manual",
        dns_options: Mapping[str, Any] | None = None,
        email: str | None = None,
        agree_tos: bool = False,
        ca_bundle: str | Path | None = None,
        roots: str | Path | None = None,
        issuer_url: str | None = None,
        timeout: float = 90,
    ) -> None:
        if not directory.startswith("https://"):
            raise InputError(f"the ACME directory must be an https:// URL, not {directory!r}",
                             hint="e.g. https://acme.example/directory (TLS is verified)")
        if issuer_url is not None and not issuer_url.startswith("https://"):
            raise InputError(f"issuer_url must be https://, not {issuer_url!r}")
        self.directory = directory
        self.state_dir = Path(state_dir)
        self.updater = _updater(dns, dict(dns_options or {}))
        self.email = email
        self.agree_tos = agree_tos
        self.ca_bundle = Path(ca_bundle) if ca_bundle else None
        self.roots = Path(roots) if roots else None
        self.issuer_url = issuer_url
        self.timeout = timeout
        self._client: Any = None
        self._key: Any = None

    # ------------------------------------------------------------------ plumbing

    def _verify(self) -> str | bool:
        if self.ca_bundle is None:
            return True
        if not self.ca_bundle.is_file():
            raise InputError("the CA bundle for the ACME server does not exist",
                             file=str(self.ca_bundle),
                             hint="give ca_bundle the PEM of the CA that signed the ACME "
                             "server's TLS certificate")
        return str(self.ca_bundle)

    def _account_key(self) -> Any:
        """The ACME account key (EC P-256), made once, 0600 in a 0700 folder."""
        if self._key is None:
            m = _acme()
            self.state_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.state_dir, 0o700)
            path = self.state_dir / ACCOUNT_KEY
            if path.exists():
                if path.stat().st_mode & 0o077:
                    os.chmod(path, 0o600)
                key = serialization.load_pem_private_key(path.read_bytes(), None)
            else:
                key = ec.generate_private_key(ec.SECP256R1())
                atomic_write(path, key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption()), mode=0o600)
            self._key = m.jose.JWKEC(key=key)
        return self._key

    def _call(self, what: str, fn: Any, *args: Any, node: str | None = None, **kw: Any) -> Any:
        """Run an acme call, turning transport failures and problem documents into cckit
        errors (the account key and request bodies never appear in them)."""
        import requests

        m = _acme()
        try:
            for _ in range(2):  # a rejected nonce is retried (acme retries once itself)
                try:
                    return fn(*args, **kw)
                except m.messages.Error as e:
                    if e.code != "badNonce":
                        raise
            return fn(*args, **kw)
        except requests.exceptions.SSLError:
            raise HostKeyError(
                f"TLS verification of the ACME server failed while {what} ({self.directory})",
                node=node, hint="give ca_bundle the CA that signed the ACME server's TLS "
                "certificate (verification stays on)") from None
        except requests.exceptions.RequestException as e:
            raise ConnectError(f"cannot reach the ACME server {self.directory} while {what}: "
                               f"{type(e).__name__}", node=node,
                               hint="check the URL and the network path") from None
        except m.messages.Error as e:
            raise ProcedureError(f"the ACME server refused {what}: {e.typ}: {e.detail}",
                                 node=node) from None

    def _acme_client(self) -> Any:
        if self._client is None:
            m = _acme()
            key = self._account_key()
            net = m.client.ClientNetwork(key, alg=m.jose.ES256, verify_ssl=self._verify(),
                                         user_agent="cckit", timeout=int(self.timeout))
            directory = self._call("reading the directory", m.client.ClientV2.get_directory,
                                   self.directory, net)
            tos = getattr(directory.meta, "terms_of_service", None)
            if tos and not self.agree_tos:
                raise InputError(f"the ACME server's terms of service must be agreed: {tos}",
                                 hint="read them, then set ca_options.agree_tos: true")
            acme = m.client.ClientV2(directory, net)
            reg = m.messages.NewRegistration.from_data(
                email=self.email, terms_of_service_agreed=bool(tos) or None)
            try:
                regr = self._call("registering the account", acme.new_account, reg)
            except m.errors.ConflictError as e:  # the key's account exists: use it
                regr = m.messages.RegistrationResource(uri=e.location,
                                                       body=m.messages.Registration())
            net.account = regr
            self._client = acme
        return self._client

    def _order_path(self, key_id: str) -> Path:
        return self.state_dir / "orders" / f"{key_id[:32]}.json"

    def _issued_path(self, key_id: str) -> Path:
        return self.state_dir / "issued" / f"{key_id[:32]}.pem"

    def _load_order(self, key_id: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self._order_path(key_id).read_text("utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("directory") == self.directory \
            else None

    def _save_order(self, key_id: str, orderr: Any, waiting: list[TxtRecord],
                    nodes: list[str]) -> None:
        atomic_write(self._order_path(key_id), json.dumps({
            "directory": self.directory, "order": orderr.to_json(), "nodes": nodes,
            "waiting": [list(r) for r in waiting]}, indent=2).encode("utf-8"))

    def _root_pool(self) -> list[x509.Certificate]:
        if self.roots is not None:
            return certs.load_certificates(self.roots)
        cafile = ssl.get_default_verify_paths().cafile
        if cafile and Path(cafile).is_file():
            return x509.load_pem_x509_certificates(Path(cafile).read_bytes())
        return []

    # ------------------------------------------------------------------ the adapter

    def submit(self, node: str, csr: x509.CertificateSigningRequest) -> None:
        """Order a certificate for this CSR (or go on with the order already open for it)."""
        if self.collect(node, csr) is not None:
            return
        check_csr_signature(node, csr)
        names = csr_names(csr)
        if not names:
            raise InputError("the CSR names no host (no DNS SAN, no host-name CN): nothing "
                             "for DNS-01 to prove", node=node,
                             hint="generate the CSR again on the node")
        m = _acme()
        key_id = certs.public_key_sha256(csr)
        acme = self._acme_client()
        state = self._load_order(key_id)
        nodes = sorted({node, *(state or {}).get("nodes", [])})
        asked = {TxtRecord(*r) for r in (state or {}).get("waiting", [])}
        orderr = None
        if state:
            orderr = m.messages.OrderResource.from_json(state["order"])
            try:  # the order may have expired or the server forgotten it: start again
                orderr = orderr.update(authorizations=[
                    self._call("reading an authorization", acme.poll, a, node=node)[0]
                    for a in orderr.authorizations])
            except ProcedureError:
                orderr = None
            if orderr is not None and any(a.body.status == m.messages.STATUS_INVALID
                                          for a in orderr.authorizations):
                orderr = None  # failed before: a rerun is a new attempt
        if orderr is None:
            pem = csr.public_bytes(serialization.Encoding.PEM)
            orderr = self._call(f"the order for {', '.join(names)}", acme.new_order, pem,
                                node=node)
            asked = set()
        self._prove(node, nodes, key_id, orderr, asked)

    def _prove(self, node: str, nodes: list[str], key_id: str, orderr: Any,
               asked: set[TxtRecord]) -> None:
        m = _acme()
        acme = self._acme_client()
        key = self._account_key()
        waiting: list[TxtRecord] = []
        published: list[TxtRecord] = []
        answers = []
        for authzr in orderr.authorizations:
            if authzr.body.status != m.messages.STATUS_PENDING:
                continue
            domain = authzr.body.identifier.value
            dns01 = [c for c in authzr.body.challenges
                     if isinstance(c.chall, m.challenges.DNS01)]
            if not dns01:
                raise ProcedureError(f"the ACME server offers no dns-01 challenge for {domain}",
                                     node=node, hint="use an ACME server that allows DNS-01")
            challb = dns01[0]
            record = TxtRecord(challb.chall.validation_domain_name(domain),
                               challb.chall.validation(key), domain)
            if self.updater.publish(node, record, asked_before=record in asked):
                published.append(record)
                answers.append((challb, record))
            else:
                waiting.append(record)
        self._save_order(key_id, orderr, waiting, nodes)
        if waiting:
            return  # collect() finds nothing; sign_all raises WaitingForCA with the records
        deadline = dt.datetime.now() + dt.timedelta(seconds=self.timeout)
        try:
            for challb, record in answers:
                self._call(f"the dns-01 answer for {record.domain}", acme.answer_challenge,
                           challb, challb.chall.response(key), node=node)
            try:
                orderr = acme.poll_authorizations(orderr, deadline)
            except m.errors.ValidationError as e:
                self._order_path(key_id).unlink(missing_ok=True)
                raise ProcedureError(
                    f"the ACME server could not validate {self._failures(e.failed_authzrs)} "
                    f"(the CSR of {', '.join(nodes)})", node=node,
                    hint=f"check the TXT record(s) with {self.updater.describe()}; a rerun "
                    "starts a new order") from None
            except m.errors.TimeoutError:
                raise ProcedureError(
                    f"the ACME server did not finish validating {', '.join(csr_names_of(orderr))}"
                    f" within {self.timeout:g} s", node=node,
                    hint="rerun: the same order is picked up") from None
            try:
                orderr = self._call("finalizing the order", acme.finalize_order, orderr,
                                    deadline, node=node)
            except m.errors.Error as e:
                raise ProcedureError(f"the ACME order was not issued: {e}", node=node,
                                     hint="rerun: a new order is made when this one "
                                     "failed") from None
        finally:
            for record in published:
                try:
                    self.updater.clear(record)
                except Exception:  # noqa: S110 - a left-over TXT record does no harm
                    pass
        atomic_write(self._issued_path(key_id), orderr.fullchain_pem.encode("ascii"))
        self._order_path(key_id).unlink(missing_ok=True)

    @staticmethod
    def _failures(failed: list[Any]) -> str:
        out = []
        for authzr in failed:
            domain = authzr.body.identifier.value
            errs = [f"{c.error.detail or c.error.typ}" for c in authzr.body.challenges
                    if c.error is not None]
            out.append(f"_acme-challenge.{domain} (dns-01 for {domain}): "
                       + ("; ".join(errs) or "invalid"))
        return ", ".join(out)

    def collect(self, node: str, csr: x509.CertificateSigningRequest) -> SignedCertificate | None:
        """The certificate issued for this CSR's key, with its chain to a root, or None."""
        key_id = certs.public_key_sha256(csr)
        path = self._issued_path(key_id)
        if not path.exists():
            return None
        got = certs.load_certificates(path)
        leaf, sent = got[0], got[1:]
        if certs.public_key_sha256(leaf) != key_id:
            return None
        return SignedCertificate(node=node, certificate=leaf,
                                 chain=issuer_path(leaf, [*sent, *self._root_pool()]),
                                 source=f"ACME {self.directory}")

    def pending_records(self) -> list[TxtRecord]:
        """The TXT records a person still has to create (manual DNS-01)."""
        out: list[TxtRecord] = []
        for path in sorted((self.state_dir / "orders").glob("*.json")):
            try:
                data = json.loads(path.read_text("utf-8"))
            except ValueError:
                continue
            out.extend(TxtRecord(*r) for r in data.get("waiting", []))
        return out

    def describe(self) -> str:
        return f"ACME {self.directory} (DNS-01 by {self.updater.describe()})"

    def waiting_hint(self) -> str:
        records = self.pending_records()
        if not records:
            return "rerun: the ACME order is picked up where it stopped"
        lines = "; ".join(f"create this TXT record: {r}" for r in records)
        return f"{lines} — then rerun (the same order resumes)"

    def signing_key(self) -> SigningKey | None:
        """From ``issuer_url`` when set (for pebble its management interface
        ``/intermediates/0``: ACME itself publishes no chain before an order), else from the
        chain of the last certificate this adapter was issued; None when neither exists."""
        if self.issuer_url:
            import requests

            try:
                r = requests.get(self.issuer_url, verify=self._verify(), timeout=self.timeout)
                r.raise_for_status()
            except requests.exceptions.SSLError:
                raise HostKeyError(f"TLS verification of {self.issuer_url} failed",
                                   hint="give ca_bundle the CA of that server") from None
            except requests.RequestException as e:
                raise ConnectError(f"cannot read the issuing certificate at "
                                   f"{self.issuer_url}: {type(e).__name__}") from None
            cert = certs.load_certificates(r.content, source=self.issuer_url)[0]
            return SigningKey.of(cert, f"the ACME server's issuing certificate at "
                                 f"{self.issuer_url}")
        issued = sorted((self.state_dir / "issued").glob("*.pem"),
                        key=lambda p: p.stat().st_mtime)
        if issued:
            got = certs.load_certificates(issued[-1])
            if len(got) > 1:
                return SigningKey.of(got[1], "the chain of the last certificate the ACME "
                                     f"server issued ({issued[-1].name})")
        return None


def csr_names_of(orderr: Any) -> list[str]:
    return [a.body.identifier.value for a in orderr.authorizations]
