"""The certmgr REST transport against the VOS mock: a CUCM 14 site (certmgr REST exists on
CUCM/IM&P/CUC/CER 14+, not on UCCX or SocialMiner; DESIGN.md), loopback, real TLS."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import socket
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from urllib3.util.ssl_ import create_urllib3_context

from cckit import certs, display
from cckit.credentials import Secret
from cckit.errors import (
    AuthenticationError,
    CommandError,
    ConnectError,
    HostKeyError,
    InputError,
)
from cckit.sites import CopRepository, RestEndpoint, load_site
from cckit.vos import connect
from cckit.vos.base import NotSupported
from cckit.vos.rest import RestTransport, normalize_fingerprint
from cckit.vosmock.testing import SIGALGS_ECDSA, running_site, tls_probe
from tests import certfactory as cf

pytestmark = pytest.mark.timeout(60)

UNIT = "tomcat-ECDSA"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    d = tmp_path_factory.mktemp("vosmock-rest")
    with running_site(d / "mock", version="14.0.1.10000-1", product="cucm",
                      restart_seconds=0) as running:
        loaded = load_site(running.site_file)
        pub = next(n for n in loaded.nodes if n.role == "cucm-publisher")
        sub = next(n for n in loaded.nodes if n.role == "cucm-subscriber")
        active = running.state_dir / "nodes"
        cafile = d / "node-cas.pem"
        # the self-signed tomcat + tomcat-ECDSA certificates every node presents
        cafile.write_bytes(b"".join(
            (active / n.name / "active" / u / f"{u}.pem").read_bytes()
            for n in (pub, sub) for u in ("tomcat", UNIT)))
        running.loaded = loaded
        running.pub = pub
        running.sub = sub
        running.cafile = cafile
        running.tmp = d
        yield running


def rest_node(node, **rest):
    return dataclasses.replace(node, transport="rest",
                               rest=RestEndpoint(node.rest.port, **rest))


def presented_fingerprint(port: int, server_hostname: str) -> str:
    """SHA-256 of the leaf the port presents to a requests/urllib3 client."""
    ctx = create_urllib3_context(cert_reqs=ssl.CERT_NONE)
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock, \
            ctx.wrap_socket(sock, server_hostname=server_hostname) as tls:
        der = tls.getpeercert(binary_form=True)
    return hashlib.sha256(der).hexdigest()


@pytest.fixture
def rest(site):
    t = RestTransport(rest_node(site.pub, cafile=site.cafile), site.username,
                      Secret(site.password), timeout=10)
    yield t
    t.close()


# ------------------------------------------------------------------------------ certmgr flow

def test_generate_csr_returns_the_nodes_csr(rest, site):
    csr = rest.generate_csr(UNIT)
    assert csr.is_signature_valid
    cn = csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == "cucm1-EC.cc.example.com"
    assert isinstance(csr.public_key(), ec.EllipticCurvePublicKey)
    # the key the node holds for the pending CSR is the CSR's key
    stored = (site.state_dir / "nodes" / site.pub.name / "csr" / UNIT / f"{UNIT}.csr")
    assert certs.load_csr(stored.read_bytes()) == csr


def test_pending_csr_is_read_from_the_node_over_its_cli(site):
    """certmgr cannot read a CSR back: the pending CSR comes from the node (its CLI), so a
    CSR generated elsewhere (OS Admin, SSH, another process) is found too."""
    node = rest_node(site.pub, cafile=site.cafile)
    with connect(site.loaded, node) as t:
        assert isinstance(t, RestTransport)
        csr = t.generate_csr(UNIT)
    with connect(site.loaded, node) as fresh:  # another process, same node
        assert fresh.pending_csr(UNIT) == csr
        assert fresh.download_csr(UNIT) == csr
        assert fresh.version().version.startswith("14.")
        own = {e.unit: e for e in fresh.list_certificates("own")}
        assert own[UNIT].self_signed and own[UNIT].signed_by is None


def test_csr_request_body(rest):
    body = rest.csr_parameters(UNIT)
    assert body == {
        "service": UNIT, "distribution": "this-server",
        "commonName": "cucm1-EC.cc.example.com", "keyType": "ec", "keyLength": 384,
        "hashAlgorithm": "sha384",
        "altNames": ["cucm1.cc.example.com", "cucm1-EC.cc.example.com"],
    }
    rsa = rest.csr_parameters("tomcat")
    assert (rsa["keyType"], rsa["keyLength"], rsa["hashAlgorithm"], rsa["commonName"]) == \
        ("rsa", 2048, "sha256", "cucm1.cc.example.com")
    assert rest.csr_parameters(UNIT, key_size=521, hash_algorithm="SHA-512")["keyLength"] == 521
    with pytest.raises(InputError, match="256, 384 or 521"):
        rest.csr_parameters(UNIT, key_size=2048)
    with pytest.raises(InputError, match="weaker"):
        rest.csr_parameters(UNIT, key_size=384, hash_algorithm="sha256")
    with pytest.raises(InputError, match="unknown certificate unit"):
        rest.csr_parameters("ipsec")


def test_trust_upload_is_listed_with_its_certificate(rest):
    ca = cf.make_root("REST Listed Root CA")
    name = rest.upload_trust(ca.cert)
    assert name.startswith("tomcat-trust/REST_Listed_Root_CA")
    entries = {e.file: e for e in rest.list_certificates("trust")}
    assert name in entries
    entry = entries[name]
    assert entry.store == "trust" and entry.unit == "tomcat-trust"
    assert entry.certificate == ca.cert
    assert entry.self_signed and entry.signed_by is None
    assert rest.get_certificate("trust", name) == ca.cert
    # the node's own self-signed certificates are there too, parsed
    assert any(e.certificate is not None and "cucm1-EC" in e.file for e in entries.values())
    # uploading again is idempotent and names the same file
    assert rest.upload_trust(ca.cert) == name
    with pytest.raises(CommandError, match="no certificate"):
        rest.get_certificate("trust", "tomcat-trust/nope.pem")


def test_trust_upload_refuses_a_leaf(rest):
    ca = cf.make_root("Leaf Posing As CA", ca=False)
    with pytest.raises(InputError, match="not a CA certificate"):
        rest.upload_trust(ca.cert)


def test_identity_upload_of_a_cert_signed_for_the_csr(rest, site):
    ca = cf.make_root("REST EC Issuing Root")
    ca_file = rest.upload_trust(ca.cert)
    csr = rest.generate_csr(UNIT)

    # a certificate for another key is refused with the node's reason
    wrong = cf.sign_csr(ca, csr, public_key=cf.ec_key().public_key())
    with pytest.raises(CommandError, match="does not match the CSR") as ei:
        rest.upload_identity(UNIT, wrong, ca_file)
    assert "HTTP 400" in str(ei.value)
    assert site.password not in str(ei.value) + ei.value.output

    # an RSA certificate for the EC slot is refused too
    rsa_ca = cf.make_root("REST RSA Root", key=cf.rsa_key())
    with pytest.raises(CommandError, match="requires an EC key"):
        rest.upload_identity(UNIT, cf.sign_csr(rsa_ca, cf.make_csr(key=cf.rsa_key())[1]),
                             ca_file)

    signed = cf.sign_csr(ca, csr)
    rest.upload_identity(UNIT, signed, ca_file)
    own = site.state_dir / "nodes" / site.pub.name / "own" / UNIT / f"{UNIT}.pem"
    assert certs.load_certificates(own.read_bytes())[0] == signed
    # the import consumed the pending CSR
    with pytest.raises(NotSupported):
        rest.pending_csr(UNIT)
    with pytest.raises(CommandError, match="no CSR is pending"):
        rest.upload_identity(UNIT, signed, ca_file)


def test_issuer_not_in_trust_is_refused(rest):
    csr = rest.generate_csr(UNIT)
    stranger = cf.make_root("Stranger Root Not Trusted")
    with pytest.raises(CommandError, match="not in tomcat-trust"):
        rest.upload_identity(UNIT, cf.sign_csr(stranger, csr), "tomcat-trust/x.pem")


def test_connect_opens_a_rest_transport_for_transport_rest(site):
    from cckit.vos import connect

    with connect(site.loaded, rest_node(site.pub, cafile=site.cafile), timeout=10) as t:
        assert isinstance(t, RestTransport)
        assert t.list_certificates("trust")


# ------------------------------------------------------------------------------ errors

def test_wrong_password_is_an_authentication_error(site, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = Secret("not-the-password-4711")
    with pytest.raises(AuthenticationError, match="HTTP 401") as ei:
        RestTransport(rest_node(site.pub, cafile=site.cafile), site.username, wrong, timeout=10)
    assert "not-the-password-4711" not in str(ei.value)
    assert "not-the-password-4711" not in caplog.text
    # a good login afterwards resets the mock's failure counter
    RestTransport(rest_node(site.pub, cafile=site.cafile), site.username,
                  Secret(site.password), timeout=10).close()


def test_repr_and_logs_hold_no_secret(rest, site, caplog):
    caplog.set_level(logging.DEBUG)
    rest.list_certificates("trust")
    assert site.password not in repr(rest)
    assert site.password not in repr(rest.__dict__)
    assert site.password not in caplog.text


def test_wrong_cafile_is_a_host_key_error(site):
    other = site.tmp / "other-ca.pem"
    other.write_bytes(cf.make_root("Some Other CA").pem)
    with pytest.raises(HostKeyError, match=r"not trusted by rest\.cafile") as ei:
        RestTransport(rest_node(site.pub, cafile=other), site.username,
                      Secret(site.password), timeout=10)
    assert "rest.fingerprint" in str(ei.value)  # says what to do


def test_default_ca_bundle_does_not_trust_a_self_signed_node(site):
    with pytest.raises(HostKeyError, match="default CA bundle"):
        RestTransport(rest_node(site.pub), site.username, Secret(site.password), timeout=10)


def test_certificate_for_another_host_is_a_host_key_error(site):
    node = dataclasses.replace(rest_node(site.pub, cafile=site.cafile),
                               host="impostor.cc.example.com")
    want = re.escape("not valid for 'impostor.cc.example.com' (hostname mismatch)")
    with pytest.raises(HostKeyError, match=want):
        RestTransport(node, site.username, Secret(site.password), timeout=10)


def test_pinned_fingerprint(site):
    port = site.pub.rest.port
    fp = presented_fingerprint(port, site.pub.host)
    colons = ":".join(fp[i:i + 2] for i in range(0, 64, 2)).upper()
    for pin in (fp, colons):
        with RestTransport(rest_node(site.pub, fingerprint=pin), site.username,
                           Secret(site.password), timeout=10) as t:
            assert t.list_certificates("trust")
    # pinning wins over a cafile that would not verify
    bad_ca = site.tmp / "unrelated.pem"
    bad_ca.write_bytes(cf.make_root("Unrelated CA").pem)
    with RestTransport(rest_node(site.pub, cafile=bad_ca, fingerprint=fp), site.username,
                       Secret(site.password), timeout=10) as t:
        assert t.list_certificates("trust")


def test_wrong_pinned_fingerprint_is_a_host_key_error(site, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(HostKeyError, match="does not match the pinned") as ei:
        RestTransport(rest_node(site.pub, fingerprint="ab" * 32), site.username,
                      Secret(site.password), timeout=10)
    assert "rest.fingerprint" in str(ei.value)
    assert site.password not in str(ei.value) + caplog.text


def test_bad_fingerprint_setting_is_an_input_error(site):
    with pytest.raises(InputError, match="64 hex digits"):
        RestTransport(rest_node(site.pub, fingerprint="12:34"), site.username,
                      Secret(site.password), check=False)
    assert normalize_fingerprint("AB:" * 31 + "AB") == "ab" * 32


def test_missing_cafile_is_an_input_error(site):
    with pytest.raises(InputError, match="does not exist"):
        RestTransport(rest_node(site.pub, cafile=site.tmp / "nope.pem"), site.username,
                      Secret(site.password), check=False)


def test_nothing_listening_is_a_connect_error(site):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    node = dataclasses.replace(site.pub, transport="rest",
                               rest=RestEndpoint(port, site.cafile))
    with pytest.raises(ConnectError, match=f"127.0.0.1:{port}"):
        RestTransport(node, site.username, Secret(site.password), timeout=5)


# ------------------------------------------------------------------------------ not in certmgr

def test_operations_certmgr_lacks_need_the_cli(site):
    # opened without a CLI, what certmgr does not offer is refused, naming the CLI command
    with RestTransport(rest_node(site.sub, cafile=site.cafile), site.username,
                       Secret(site.password), timeout=10) as t:
        repo = CopRepository("127.0.0.1", 22, "/cop", "sftp")
        calls = [
            t.version,
            t.service_status,
            t.restart_service,
            t.reboot,
            lambda: t.install_cop("x.cop.sgn", repo, "u", Secret("p")),
            lambda: t.list_certificates("own"),
            lambda: t.get_certificate("own", f"{UNIT}/{UNIT}.pem"),
            lambda: t.pending_csr(UNIT),
        ]
        for call in calls:
            with pytest.raises(NotSupported) as ei:
                call()
            assert "open this transport with a CLI" in str(ei.value)
            assert isinstance(ei.value, CommandError)
        with pytest.raises(NotSupported, match="show csr own"):
            t.download_csr(UNIT)


def test_ca_signed_end_to_end_over_rest(tmp_path):
    """VOS 14+: the whole CA-signed scenario with the certificate store over certmgr REST
    (CSRs, trust, identities) and what certmgr lacks (pending CSRs, restarts) over the CLI."""
    from cckit.ca import get_adapter
    from cckit.procedures.ca_signed import CaSigned
    from cckit.session import SiteSession

    with running_site(tmp_path / "mock", version="14.0.1.10000-1", product="cucm",
                      restart_seconds=0.2) as m:
        loaded = load_site(m.site_file)
        active = m.state_dir / "nodes"
        cafile = tmp_path / "node-cas.pem"
        cafile.write_bytes(b"".join((active / n.name / "active" / u / f"{u}.pem").read_bytes()
                                    for n in loaded.nodes for u in ("tomcat", UNIT)))
        site = dataclasses.replace(loaded, nodes=tuple(
            rest_node(n, cafile=cafile) for n in loaded.nodes))
        with SiteSession(site, workdir=tmp_path / "run", tls_timeout=3) as s:
            proc = CaSigned(s, get_adapter("lab", directory=tmp_path / "ca"))
            assert "POST /platformcom/api/v1/certmgr/config/csr" in display.text(proc.plan())
            results = proc.run_all()
            assert all(r.ok for r in results), results
            assert results[-1].verdict.startswith("every port presents the CA-signed")
            assert all(isinstance(t, RestTransport) for t in s._conns.values())
        # seen by an outside ECDSA-only client: every CUCM port presents a CA-signed
        # tomcat-ECDSA now
        for n in m.nodes.values():
            ec = tls_probe(n.web_ports[0], SIGALGS_ECDSA)
            assert ec.key_type == "EC" and ec.issuer_cn != ec.subject_cn, (n.name, ec)
