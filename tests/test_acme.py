"""The ACME CA adapter against a real ACME server (Debian's pebble, DNS by pebble-challtestsrv),
with CSRs from a mock node over SSH; the CA signing-key probe and what preflight does with it."""

from __future__ import annotations

import logging
import stat
import sys

import pytest
from cryptography import x509

from cckit import certs
from cckit.ca import SigningKey, check_options, get_adapter, sign_all
from cckit.ca.acme import AcmeCA, ChalltestsrvUpdater, ManualUpdater, TxtRecord
from cckit.errors import GateError, InputError, MissingDependency, ProcedureError, WaitingForCA
from cckit.procedures import SiteSession, preflight
from cckit.results import VersionRecord
from cckit.sites import load_site
from cckit.vosmock.testing import running_site

from . import certfactory as cf
from . import pebble as pb

pytestmark = pytest.mark.timeout(120)
needs_pebble = pytest.mark.skipif(not pb.installed(),
                                  reason="pebble/pebble-challtestsrv not installed "
                                  "(apt-get install pebble; .ci/run does)")


@pytest.fixture(scope="module")
def pebble(tmp_path_factory):
    if not pb.installed():
        pytest.skip("pebble not installed")
    with pb.running_pebble(tmp_path_factory.mktemp("pebble")) as p:
        yield p


@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    with running_site(tmp_path_factory.mktemp("acme-mock") / "mock", restart_seconds=0) as m:
        yield m


@pytest.fixture
def session(mock, tmp_path):
    with SiteSession(load_site(mock.site_file), workdir=tmp_path / "run", tls_timeout=3) as s:
        yield s


def _acme(pebble, tmp_path, dns="challtestsrv", **kw) -> AcmeCA:
    opts = {"url": pebble.challtestsrv} if dns == "challtestsrv" else {"nameserver": pebble.dns}
    kw.setdefault("dns_options", opts)
    ca = get_adapter("acme", directory=pebble.directory, state_dir=tmp_path / "acme", dns=dns,
                     agree_tos=True, ca_bundle=pebble.ca_bundle, roots=pebble.root_file, **kw)
    assert isinstance(ca, AcmeCA)
    return ca


def _node_csr(session, name: str, unit: str) -> x509.CertificateSigningRequest:
    node = next(n for n in session.nodes if n.name == name)
    with session.on(node) as t:  # `set csr gen <unit>` over SSH on the mock node
        return t.generate_csr(unit)


# --------------------------------------------------------------------------- against pebble


@needs_pebble
def test_signs_the_mock_nodes_own_csrs_end_to_end(pebble, session, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    ca = _acme(pebble, tmp_path)
    rsa_csr = _node_csr(session, "uccx-pub", "tomcat")
    ec_csr = _node_csr(session, "uccx-sub", "tomcat-ECDSA")
    signed = sign_all(ca, {"uccx-pub": rsa_csr, "uccx-sub": ec_csr})

    pub = signed["uccx-pub"]
    gate = certs.check_signed_certificate(pub.certificate, rsa_csr, list(pub.chain),
                                          unit="tomcat")
    assert gate.ok, gate.reasons  # the RSA tomcat certificate renew_tomcat will upload
    assert gate.chain_checked and gate.chain[-1].subject_cn.startswith("Pebble Root CA")
    assert certs.describe(pub.certificate).sans == ("DNS:uccx1.cc.example.com",)
    # pebble signs with RSA: the ECDSA certificate is refused by the tomcat-ECDSA gate
    sub = signed["uccx-sub"]
    r = certs.check_signed_certificate(sub.certificate, ec_csr, list(sub.chain))
    assert certs.GateCode.RSA_SIGNED in r.codes
    # (pebble also picks the subject CN itself: one of the SANs, not the CSR's "-EC" CN)
    assert set(certs.describe(sub.certificate).sans) == {
        "DNS:uccx2.cc.example.com", "DNS:uccx2-EC.cc.example.com"}

    # only the account key was made here: 0600 in a 0700 folder, never logged
    key_file = tmp_path / "acme" / "account.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "acme").stat().st_mode) == 0o700
    assert [p.name for p in (tmp_path / "acme").rglob("*.key")] == ["account.key"]
    body = b"".join(key_file.read_bytes().splitlines()[1:-1]).decode()
    assert body[:40] not in caplog.text

    # a rerun collects what was issued: no new order
    again = _acme(pebble, tmp_path)
    assert sign_all(again, {"uccx-pub": rsa_csr})["uccx-pub"].certificate == pub.certificate


@needs_pebble
def test_multi_san_csr_is_one_order_for_both_nodes(pebble, session, tmp_path):
    # the multi-server SAN CSR of 11.6.2+ (one CSR for publisher and subscriber), made here
    # with the names of the mock's two UCCX nodes
    hosts = [n.host for n in session.nodes if n.name in ("uccx-pub", "uccx-sub")]
    _, csr = cf.make_csr(hosts[0], hosts, key=cf.rsa_key())
    ca = _acme(pebble, tmp_path)
    signed = sign_all(ca, {"uccx-pub": csr, "uccx-sub": csr})
    assert signed["uccx-pub"].certificate == signed["uccx-sub"].certificate
    assert len(list((tmp_path / "acme" / "issued").iterdir())) == 1
    cert = signed["uccx-pub"].certificate
    assert set(certs.describe(cert).sans) == {f"DNS:{h}" for h in hosts}
    assert certs.check_signed_certificate(cert, csr, list(signed["uccx-sub"].chain),
                                          unit="tomcat").ok


@needs_pebble
def test_manual_dns_pauses_with_the_record_and_resumes(pebble, session, tmp_path):
    csr = _node_csr(session, "sm", "tomcat")
    ca = _acme(pebble, tmp_path, dns="manual")
    with pytest.raises(WaitingForCA) as first:
        sign_all(ca, {"sm": csr})
    [record] = ca.pending_records()
    assert record.name == "_acme-challenge.sm1.cc.example.com"
    assert f"create this TXT record: _acme-challenge.sm1.cc.example.com TXT {record.value}" \
        in str(first.value)
    # rerun before anyone created it: still waiting, the same order and value
    with pytest.raises(WaitingForCA) as second:
        sign_all(_acme(pebble, tmp_path, dns="manual"), {"sm": csr})
    assert record.value in str(second.value)
    pebble.set_txt(record.name, record.value)  # the engineer creates the record
    signed = sign_all(_acme(pebble, tmp_path, dns="manual"), {"sm": csr})
    assert certs.public_key_sha256(signed["sm"].certificate) == certs.public_key_sha256(csr)
    assert _acme(pebble, tmp_path, dns="manual").pending_records() == []


class _StaleRecord(ChalltestsrvUpdater):
    """Publishes a wrong value (a stale record left by an earlier attempt)."""

    def publish(self, node, record, *, asked_before):
        return super().publish(node, TxtRecord(record.name, "stale-value", record.domain),
                               asked_before=asked_before)


@needs_pebble
def test_a_failed_challenge_names_the_node_and_the_domain(pebble, session, tmp_path):
    csr = _node_csr(session, "uccx-sub", "tomcat")
    ca = _acme(pebble, tmp_path)
    ca.updater = _StaleRecord(pebble.challtestsrv)
    with pytest.raises(ProcedureError) as e:
        sign_all(ca, {"uccx-sub": csr})
    text = str(e.value)
    assert e.value.node == "uccx-sub" and "[node uccx-sub]" in text
    assert "could not validate _acme-challenge.uccx2.cc.example.com" in text
    assert "dns-01 for uccx2.cc.example.com" in text
    # the failed order is dropped: a rerun with a working updater starts a new one
    assert sign_all(_acme(pebble, tmp_path), {"uccx-sub": csr})["uccx-sub"]


@needs_pebble
def test_probe_and_the_tomcat_ecdsa_advisor_refuse_pebble(pebble, session, tmp_path):
    ca = _acme(pebble, tmp_path, issuer_url=f"{pebble.management}/intermediates/0")
    key = ca.signing_key()
    assert key is not None and key.key_type == "RSA" and not key.signs_ec
    assert key.issuer_subject.startswith("CN=Pebble Intermediate CA")
    assert "/intermediates/0" in key.learnt_from
    advice = preflight.Preflight(session).advise(ca=ca, app_certs_ca_signed=True)
    assert advice.scenario == "rsa_only"
    reason = next(r for r in advice.reasons if "this CA cannot do it" in r)
    assert "use rsa_only, or a CA with an EC issuing key" in reason
    assert "RSA 2048 issuing key of CN=Pebble Intermediate CA" in reason
    # without issuer_url the probe learns it from the chain of an issued certificate
    plain = _acme(pebble, tmp_path / "b")
    assert plain.signing_key() is None
    sign_all(plain, {"uccx-pub": _node_csr(session, "uccx-pub", "tomcat")})
    learnt = plain.signing_key()
    assert learnt is not None and learnt.sha256 == key.sha256
    assert "chain of the last certificate" in learnt.learnt_from


@needs_pebble
def test_ca_signed_with_pebble_stops_at_the_gate_naming_the_probed_key(pebble, session,
                                                                       tmp_path):
    from cckit.procedures.ca_signed import CaSigned

    proc = CaSigned(session, _acme(pebble, tmp_path))  # no issuer_url: learnt from the chain
    proc.generate_csrs(regenerate=True)
    proc.sign()
    with pytest.raises(GateError) as e:
        proc.gate()
    assert sum("the CA signed it with RSA" in r for r in e.value.reasons) == 3
    assert "this CA cannot do it (it signs with the RSA 2048 issuing key of " \
        "CN=Pebble Intermediate CA" in e.value.hint
    assert "chain of the last certificate the ACME server issued" in e.value.hint


@needs_pebble
def test_tls_to_the_directory_is_verified(pebble, tmp_path):
    from cckit.errors import HostKeyError

    other = cf.make_root("not pebble's TLS root")
    bundle = tmp_path / "wrong.pem"
    bundle.write_bytes(other.pem)
    ca = AcmeCA(pebble.directory, state_dir=tmp_path / "s", dns="challtestsrv",
                dns_options={"url": pebble.challtestsrv}, agree_tos=True, ca_bundle=bundle)
    _, csr = cf.make_csr("uccx1.cc.example.com", ["uccx1.cc.example.com"])
    with pytest.raises(HostKeyError, match="TLS verification of the ACME server failed"):
        sign_all(ca, {"uccx-pub": csr})
    no_tos = AcmeCA(pebble.directory, state_dir=tmp_path / "t", dns="challtestsrv",
                    dns_options={"url": pebble.challtestsrv}, ca_bundle=pebble.ca_bundle)
    with pytest.raises(InputError, match="terms of service"):
        sign_all(no_tos, {"uccx-pub": csr})


# --------------------------------------------------------------------------- offline


def test_options_are_checked_in_one_line(tmp_path):
    with pytest.raises(InputError, match="unknown option verify"):
        check_options("acme", {"directory": "https://a/dir", "state_dir": "s", "verify": False})
    with pytest.raises(InputError, match="must be an https:// URL"):
        get_adapter("acme", directory="http://a/dir", state_dir=tmp_path)
    with pytest.raises(InputError, match="unknown DNS updater 'route53'"):
        get_adapter("acme", directory="https://a/dir", state_dir=tmp_path, dns="route53")
    with pytest.raises(InputError, match="the rfc2136 DNS updater"):
        get_adapter("acme", directory="https://a/dir", state_dir=tmp_path, dns="rfc2136",
                    dns_options={"zone": "cc.example.com"})


def test_without_the_acme_package_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "acme", None)
    ca = AcmeCA("https://a/dir", state_dir=tmp_path, dns="manual")
    _, csr = cf.make_csr()
    with pytest.raises(MissingDependency, match=r"pip install 'cckit\[acme\]'"):
        ca.submit("uccx-pub", csr)


def test_manual_updater_waits_until_asked_once():
    record = TxtRecord("_acme-challenge.a.example", "v", "a.example")
    assert ManualUpdater().publish("n", record, asked_before=False) is False
    assert ManualUpdater(check=False).publish("n", record, asked_before=True) is True


def test_probe_of_lab_and_files_and_the_gate_hint(tmp_path):
    rsa_lab = get_adapter("lab", directory=tmp_path / "lab", algorithm="rsa")
    key = rsa_lab.signing_key()
    assert (key.key_type, key.detail) == ("RSA", "2048")
    assert key.issuer_subject == rsa_lab.chain[0].subject.rfc4514_string()
    ec_lab = get_adapter("lab", directory=tmp_path / "ec")
    assert ec_lab.signing_key().signs_ec

    root = cf.make_root("Files Root", key=cf.rsa_key())
    inter = cf.make_intermediate(root, "Files Issuing", key=cf.rsa_key())
    inbox = tmp_path / "in"
    inbox.mkdir()
    files = get_adapter("files", outbox=tmp_path / "out", inbox=inbox)
    assert files.signing_key() is None
    (inbox / "ca.pem").write_bytes(cf.pem(root.cert, inter.cert))
    found = files.signing_key()
    assert found.issuer_subject == inter.cert.subject.rfc4514_string()
    assert "lowest CA certificate" in found.learnt_from
    given = get_adapter("files", outbox=tmp_path / "out", inbox=inbox,
                        issuing_cert=tmp_path / "root.pem")
    (tmp_path / "root.pem").write_bytes(root.pem)
    assert given.signing_key().sha256 == certs.fingerprint_sha256(root.cert)

    # the gate's refusal of an RSA-signed ECDSA certificate names the probed key
    ca = cf.make_root("RSA Root", key=cf.rsa_key())
    _, csr = cf.make_csr()
    leaf = cf.sign_csr(ca, csr, not_before=None)
    probed = SigningKey.of(ca.cert, "a test")
    with pytest.raises(GateError) as e:
        certs.gate_signed_certificate(leaf, csr, [ca.cert], now=cf.NOW, ca_key=probed)
    assert "this CA cannot do it (it signs with the RSA 2048 issuing key of" in str(e.value)
    assert "use rsa_only, or a CA with an EC issuing key" in str(e.value)


def test_advisor_with_a_probed_ec_key_recommends_ca_signed():
    v = {"pub": VersionRecord("pub", None, "h", "ssh", "11.5.1.10000-61", (), True)}
    root = cf.make_root("EC Root")
    ec_key = SigningKey.of(root.cert, "a test")
    assert preflight.advise(v, app_certs_ca_signed=True, ca_capability="rsa-only",
                            ca_key=ec_key).scenario == "ca_signed"
    rsa = SigningKey.of(cf.make_root("RSA Root", key=cf.rsa_key()).cert, "a test")
    advice = preflight.advise(v, app_certs_ca_signed=True, ca_capability="ec", ca_key=rsa)
    assert advice.scenario == "rsa_only"
    assert any("this CA cannot do it" in r for r in advice.reasons)


@pytest.fixture
def update_server():
    """A tiny DNS server over TCP that checks TSIG and records RFC 2136 updates (dnspython)."""
    import socket
    import struct
    import threading

    import dns.message
    import dns.rcode
    import dns.tsigkeyring

    keyring = dns.tsigkeyring.from_text({"cckit-key.": "c2VjcmV0LWtleS1mb3ItdGVzdHM="})
    got: dict = {"updates": [], "rcode": dns.rcode.NOERROR}
    srv = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                size = struct.unpack("!H", conn.recv(2))[0]
                wire = b""
                while len(wire) < size:
                    wire += conn.recv(size - len(wire))
                msg = dns.message.from_wire(wire, keyring=keyring)  # raises on a bad TSIG
                got["updates"].append(msg)
                reply = dns.message.make_response(msg)
                reply.set_rcode(got["rcode"])
                out = reply.to_wire()
                conn.sendall(struct.pack("!H", len(out)) + out)

    threading.Thread(target=serve, daemon=True).start()
    got["port"] = srv.getsockname()[1]
    yield got
    srv.close()


def test_rfc2136_updater_sends_a_tsig_signed_update(update_server, monkeypatch):
    import dns.rcode

    from cckit.ca.acme import Rfc2136Updater
    from cckit.credentials import SecretRef

    monkeypatch.setenv("CCKIT_TEST_TSIG", "c2VjcmV0LWtleS1mb3ItdGVzdHM=")
    up = Rfc2136Updater(f"127.0.0.1:{update_server['port']}", "cc.example.com",
                        tsig_name="cckit-key.", tsig_secret=SecretRef("env", "CCKIT_TEST_TSIG"))
    record = TxtRecord("_acme-challenge.uccx1.cc.example.com", "tok-en", "uccx1.cc.example.com")
    assert up.publish("uccx-pub", record, asked_before=False)
    up.clear(record)
    add, delete = update_server["updates"]
    assert add.had_tsig and str(add.zone[0].name) == "cc.example.com."
    [rrset] = add.update
    assert (str(rrset.name), rrset.ttl, str(rrset[0])) == (
        "_acme-challenge.uccx1.cc.example.com.", 60, '"tok-en"')
    assert str(delete.update[0][0]) == '"tok-en"'
    update_server["rcode"] = dns.rcode.REFUSED
    with pytest.raises(ProcedureError, match=r"refused the update .*\(REFUSED\)"):
        up.publish("uccx-pub", record, asked_before=False)
    # as a site file gives it: a reference, never the secret inline
    as_param = Rfc2136Updater(f"127.0.0.1:{update_server['port']}", "cc.example.com",
                              tsig_name="cckit-key.", tsig_secret={"env": "CCKIT_TEST_TSIG"})
    assert as_param.tsig_secret == SecretRef("env", "CCKIT_TEST_TSIG",
                                             where="dns_options.tsig_secret")
    with pytest.raises(InputError, match="secret written inline") as inline:
        Rfc2136Updater("ns1", "cc.example.com", tsig_name="k.", tsig_secret="hunter2-secret")
    assert "hunter2" not in str(inline.value)
    with pytest.raises(InputError, match="not in the zone"):
        up.publish("uccx-pub", TxtRecord("_acme-challenge.other.example", "v", "other.example"),
                   asked_before=False)
