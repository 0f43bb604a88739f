"""Seeded certificate defects: varied certificates so an inventory sweep has something to find.

`MockSite(seed=...)` (`serve --seed ...`) applies them once, at first boot, on top of the
default state (self-signed identities, no COP); the defaults themselves never change. A seed
is a defect name, a comma-separated list of them, or `fleet`: across `site-001`, `site-002`,
... one defect per site in the order of `DEFECTS`, every (len(DEFECTS) + 1)-th site clean,
so a batch of len(DEFECTS) + 1 sites holds one of each. `seed.json` in the site's state dir
records what was applied and each node's release, which later starts keep (a seeded node's
release wins over `--version`).

Each defect is what a real site can look like [assumed: the certificates are made here; the
rules they break are Cisco's, see the fleet inventory's findings]:

| defect | node | state |
|---|---|---|
| expiring | uccx-pub | tomcat-ECDSA signed by an EC CA, 20 days left |
| expired | uccx-sub | tomcat-ECDSA self-signed, expired 5 days ago |
| ecdsa-self-signed | uccx-pub | tomcat signed by an RSA CA, tomcat-ECDSA self-signed |
| rsa-signed-ecdsa | sm | tomcat-ECDSA signed by an RSA CA |
| no-client-auth | uccx-pub | every node at 12.5(1); tomcat CA-signed, EKU serverAuth only |
| trust-missing-ca | sm | tomcat-ECDSA signed by an EC CA that only the UCCX nodes trust |
| port-mismatch | uccx-sub | a CA-signed tomcat-ECDSA imported, Tomcat not restarted since |
| disable-cop-ca-signed | sm | tomcat-ECDSA CA-signed (EC) and the disable COP installed |
| rollback-cop-self-signed | uccx-pub | disable COP, then the rollback COP; all self-signed |
| old-csr | uccx-pub | a pending tomcat-ECDSA CSR |

Not in the `fleet` rotation (a state to renew rather than a defect to find, for the renewal
autopilot's tests):

| seed | node | state |
|---|---|---|
| expiring-tomcat | uccx-pub | every node at 12.5(1); tomcat signed by an RSA CA, 20 days left |

CA roots go into tomcat-trust of every node (as the CA-signed procedure leaves them), except
where the defect is the missing trust. The seed CAs' keys are not kept.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import pki
from .store import read_json, write_json

ECDSA, RSA = "tomcat-ECDSA", "tomcat"
#: the release the no-client-auth defect moves a site to (FN74382 covers 12.5(1) on)
RELEASE_12_5 = "12.5.1.10000-30"
_DAY = dt.timedelta(days=1)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class _CAs:
    """The site's seed CAs, made when a defect first needs one."""

    def __init__(self, site) -> None:
        self.site = site
        self._made: dict[str, tuple] = {}

    def get(self, kind: str):
        """(certificate, key) of the `ec` or `rsa` root CA."""
        if kind not in self._made:
            key = pki.new_key(ECDSA if kind == "ec" else RSA)
            name = x509.Name([
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vosmock seed CA"),
                x509.NameAttribute(NameOID.COMMON_NAME,
                                   f"vosmock seed {kind.upper()} root CA {self.site.name}"),
            ])
            cert = _build(name, name, key.public_key(), key, _now() - 30 * _DAY,
                          _now() + 3650 * _DAY, ca=True)
            self._made[kind] = (cert, key)
        return self._made[kind]


def _build(subject, issuer, public_key, signer, not_before, not_after, *, ca: bool,
           sans: list[str] = (), eku: tuple = (ExtendedKeyUsageOID.SERVER_AUTH,
                                                ExtendedKeyUsageOID.CLIENT_AUTH),
           issuer_key=None):
    is_ec = isinstance(public_key, ec.EllipticCurvePublicKey)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(public_key)
         .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1)
         .not_valid_before(not_before).not_valid_after(not_after)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(
             digital_signature=True, content_commitment=False,
             key_encipherment=not ca and not is_ec, data_encipherment=False,
             key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False,
             decipher_only=False), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))
    if issuer_key is not None:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key),
                            critical=False)
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]),
                            critical=False)
    if not ca and eku:
        b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    return b.sign(signer, pki.hash_for(signer))


def _names(node, unit: str):
    cn = pki.cn_of(node.own_cert(unit).subject)
    sans = [node.host] + ([cn] if cn != node.host else [])
    return pki.subject_name(cn, node.product.upper(), node.site.org), sans


def _signed(node, unit: str, ca, *, days_left: int = 700, eku=None, activate: bool = True):
    """Store (and by default activate, as after a Tomcat restart) a CA-signed `unit`."""
    ca_cert, ca_key = ca
    key = pki.new_key(unit)
    name, sans = _names(node, unit)
    extra = {} if eku is None else {"eku": eku}
    cert = _build(name, ca_cert.subject, key.public_key(), ca_key, _now() - 30 * _DAY,
                  _now() + days_left * _DAY, ca=False, sans=sans,
                  issuer_key=ca_key.public_key(), **extra)
    node._store_own(unit, pki.cert_pem(cert), pki.key_pem(key))
    if activate:
        node._activate()


def _trust(site, ca, *, except_node: str | None = None) -> None:
    for node in site.nodes.values():
        if node.name != except_node:
            node._add_trust(ca[0])


def _self_signed_expired(node, unit: str) -> None:
    old = node.own_cert(unit)
    key = pki.new_key(unit)
    name, sans = _names(node, unit)
    cert = _build(name, name, key.public_key(), key, _now() - 730 * _DAY, _now() - 5 * _DAY,
                  ca=True, sans=sans)
    node._store_own(unit, pki.cert_pem(cert), pki.key_pem(key))
    for fname, pem in node.trust().items():  # its self-signed copy in trust, as regen does
        if pki.load_cert(pem) == old:
            node._delete_trust(fname)
    node._add_trust(cert)
    node._activate()


def _install_cop(node, action: str) -> None:
    from .site import cop_bytes

    key = f"{node.product}_{action}"
    fname = node.site.cop_files[key]
    node.install_cop(fname, cop_bytes(key, fname))
    node._activate()


# ------------------------------------------------------------------------------ defects


def expiring(site, cas) -> None:
    ca = cas.get("ec")
    _trust(site, ca)
    _signed(site.nodes["uccx-pub"], ECDSA, ca, days_left=20)


def expired(site, cas) -> None:
    _self_signed_expired(site.nodes["uccx-sub"], ECDSA)


def ecdsa_self_signed(site, cas) -> None:
    ca = cas.get("rsa")
    _trust(site, ca)
    _signed(site.nodes["uccx-pub"], RSA, ca)


def rsa_signed_ecdsa(site, cas) -> None:
    ca = cas.get("rsa")
    _trust(site, ca)
    _signed(site.nodes["sm"], ECDSA, ca)


def _rsa_tomcat_at_12_5(site, cas, **signed) -> None:
    """Every node at 12.5(1), the publisher's tomcat signed by the RSA seed CA."""
    for node in site.nodes.values():
        node.version = RELEASE_12_5
        node.save()
    ca = cas.get("rsa")
    _trust(site, ca)
    _signed(site.nodes["uccx-pub"], RSA, ca, **signed)


def no_client_auth(site, cas) -> None:
    _rsa_tomcat_at_12_5(site, cas, eku=(ExtendedKeyUsageOID.SERVER_AUTH,))


def trust_missing_ca(site, cas) -> None:
    ca = cas.get("ec")
    _trust(site, ca, except_node="sm")
    _signed(site.nodes["sm"], ECDSA, ca)


def port_mismatch(site, cas) -> None:
    ca = cas.get("ec")
    _trust(site, ca)
    _signed(site.nodes["uccx-sub"], ECDSA, ca, activate=False)


def expiring_tomcat(site, cas) -> None:
    _rsa_tomcat_at_12_5(site, cas, days_left=20)


def disable_cop_ca_signed(site, cas) -> None:
    ca = cas.get("ec")
    _trust(site, ca)
    node = site.nodes["sm"]
    _signed(node, ECDSA, ca)
    _install_cop(node, "disable")


def rollback_cop_self_signed(site, cas) -> None:
    node = site.nodes["uccx-pub"]
    _install_cop(node, "disable")
    _install_cop(node, "rollback")


def old_csr(site, cas) -> None:
    node = site.nodes["uccx-pub"]
    key = pki.new_key(ECDSA)
    name, sans = _names(node, ECDSA)
    from .store import atomic_write

    atomic_write(node.path("csr", ECDSA, f"{ECDSA}.key"), pki.key_pem(key), mode=0o600)
    atomic_write(node.path("csr", ECDSA, f"{ECDSA}.csr"),
                 pki.csr_pem(pki.make_csr(key, name, sans)))


DEFECTS: dict[str, Callable] = {
    "expiring": expiring,
    "expired": expired,
    "ecdsa-self-signed": ecdsa_self_signed,
    "rsa-signed-ecdsa": rsa_signed_ecdsa,
    "no-client-auth": no_client_auth,
    "trust-missing-ca": trust_missing_ca,
    "port-mismatch": port_mismatch,
    "disable-cop-ca-signed": disable_cop_ca_signed,
    "rollback-cop-self-signed": rollback_cop_self_signed,
    "old-csr": old_csr,
}
#: seeds outside the fleet rotation
MORE: dict[str, Callable] = {
    "expiring-tomcat": expiring_tomcat,
}
FLEET = "fleet"


def defects_for(site_name: str, seed: str | list[str] | tuple[str, ...]) -> list[str]:
    """The defect names `seed` means for the site named `site_name` (ValueError if unknown)."""
    names = seed.split(",") if isinstance(seed, str) else list(seed)
    names = [n.strip() for n in names if n and n.strip()]
    out: list[str] = []
    for n in names:
        if n == FLEET:
            m = re.search(r"(\d+)$", site_name)
            i = (int(m.group(1)) if m else 1) - 1
            order = list(DEFECTS)
            if i % (len(order) + 1) < len(order):
                out.append(order[i % (len(order) + 1)])
        elif n in DEFECTS or n in MORE:
            out.append(n)
        else:
            raise ValueError(f"unknown seed {n!r} (use {FLEET} or "
                             f"{', '.join([*DEFECTS, *MORE])})")
    return out


def apply_seed(site, seed) -> list[str]:
    """Apply `seed` to a site at first boot (its nodes exist, nothing is listening yet)."""
    names = defects_for(site.name, seed)
    cas = _CAs(site)
    for n in names:
        try:
            (DEFECTS.get(n) or MORE[n])(site, cas)
        except KeyError as exc:
            raise ValueError(f"seed {n!r} needs node {exc} (a uccx site)") from None
    write_json(site.state_dir / "seed.json", {
        "seed": seed if isinstance(seed, str) else list(seed), "defects": names,
        "versions": {n.name: n.version for n in site.nodes.values()}})
    return names


def keep_seed(site) -> None:
    """On a later start: a node keeps the release its seed gave it (over `--version`)."""
    pinned = (read_json(site.state_dir / "seed.json", {}) or {}).get("versions") or {}
    for name, version in pinned.items():
        node = site.nodes.get(name)
        if node is not None and node.version != version:
            node.version = version
            node.save()
