"""renew_tomcat end to end against a mock UCCX 12.5 site (no tomcat-ECDSA there) with the
lab CA, and the gate's refusals (expired, wrong EKU, older than installed) changing nothing."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from cckit import certs, topology
from cckit._internal import x509build
from cckit.ca import CertificateAuthority, SignedCertificate, get_adapter
from cckit.certs import GateCode
from cckit.errors import GateError, InputError, ProcedureError
from cckit.procedures import SiteSession
from cckit.procedures.renew_tomcat import RenewTomcat
from cckit.sites import load_site
from cckit.vosmock import journal
from cckit.vosmock.testing import running_site
from tests import certfactory, chromium
from tests.chromium import nssdb
from tests.test_procedures import mock_state, presented

pytestmark = pytest.mark.timeout(240)

VERSION = "12.5.1.10000-22"


@pytest.fixture
def mock(tmp_path):
    with running_site(tmp_path / "mock", version=VERSION, restart_seconds=0.2) as m:
        yield m


@pytest.fixture
def session(mock, tmp_path):
    with SiteSession(load_site(mock.site_file), workdir=tmp_path / "run", tls_timeout=3) as s:
        yield s


def test_renew_tomcat_end_to_end_with_the_lab_ca(session, tmp_path):
    ca = get_adapter("lab", directory=tmp_path / "labca")
    before = presented(session, "rsa")
    assert all(r.cert.self_signed and r.cert.key_type == "RSA" for r in before.values())
    assert not any(v.cert for v in session.presented_all() if v.client == "ecdsa")  # 12.5
    proc = RenewTomcat(session, ca)
    plan = proc.plan()
    assert {c.step for c in plan.commands} >= {"generate_csrs", "upload_identities", "restart"}
    results = proc.run_all()
    assert results[-1].ok, results[-1]
    assert len(proc.signed) == 3
    after = presented(session, "rsa")
    assert len(after) == len(before)
    for (node, _port), r in after.items():
        assert r.cert.sha256 == certs.fingerprint_sha256(proc.signed[node].certificate)
        assert r.cert.key_type == "RSA" and not r.cert.self_signed
    # FN74382 on 12.5: the gate asked for clientAuth too (the lab CA issues both)
    gate = next(x for x in results if x.step == "gate")
    assert gate.ok and len(gate.records) == 3
    ops = [json.loads(x)["operation"]
           for x in (tmp_path / "run" / "operations.jsonl").read_text().splitlines()]
    assert ops.count("generate_csr") == 3 and ops.count("upload_identity") == 3
    # a rerun with renew=False leaves every node alone (already CA-signed)
    again = RenewTomcat(session, ca, renew=False)
    assert again.run_all()[-1].ok and again.signed == {}


class _BadCA(CertificateAuthority):
    """Signs like a CA with one defect: expired, a code-signing-only EKU, or issued before
    the installed certificate (an old one sent again)."""

    name = "bad"

    def __init__(self, defect: str) -> None:
        self.defect = defect
        self.root = certfactory.make_root("Bad Test Root", key=certfactory.rsa_key())
        self.issued: dict[str, x509.Certificate] = {}

    def submit(self, node: str, csr: x509.CertificateSigningRequest) -> None:
        now = dt.datetime.now(dt.UTC)
        nb, na = now - dt.timedelta(days=1), now + dt.timedelta(days=3650 * 3)
        eku = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        if self.defect == "expired":
            nb, na = now - dt.timedelta(days=400), now - dt.timedelta(days=2)
        elif self.defect == "eku":
            eku = [ExtendedKeyUsageOID.CODE_SIGNING]
        elif self.defect == "older":
            nb = now - dt.timedelta(days=30)  # issued before the node's current one
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.issued[node] = x509build.leaf_certificate(
            csr.subject, csr.public_key(), issuer=(self.root.key, self.root.cert.subject),
            sans=san, not_before=nb, not_after=na, eku=eku)

    def collect(self, node: str, csr: x509.CertificateSigningRequest) -> SignedCertificate | None:
        cert = self.issued.get(node)
        return None if cert is None else SignedCertificate(node, cert, (self.root.cert,), "bad")

    def describe(self) -> str:
        return f"a test CA issuing {self.defect} certificates"

    def waiting_hint(self) -> str:
        return ""


@pytest.mark.parametrize("defect,text", [("expired", "expired on"),
                                         ("eku", "extended key usage lacks serverAuth"),
                                         ("older", "older than the installed certificate")])
def test_the_gate_refuses_and_nothing_changes(session, mock, defect, text):
    proc = RenewTomcat(session, _BadCA(defect))
    proc.generate_csrs()
    proc.sign()
    state, seen = mock_state(mock), journal.read(mock.state_dir)
    with pytest.raises(GateError) as e:
        proc.gate()
    assert "nothing was uploaded" in str(e.value)
    refused = {r.split(":")[0] for r in e.value.reasons if text in r}
    assert refused == {"uccx-pub", "uccx-sub", "sm"}, e.value.reasons
    with pytest.raises(ProcedureError, match="gate"):
        proc.upload_identities()
    assert mock_state(mock) == state
    sent = [j["command"] for j in journal.read(mock.state_dir) if j not in seen]
    assert sent and all(topology.read_only_command(c) for c in sent), sent


def test_gate_eku_rules_by_version(tmp_path):
    """serverAuth always; clientAuth from 12.5 (FN74382); no EKU extension: any purpose."""
    root = certfactory.make_root(key=certfactory.rsa_key())
    _key, csr = certfactory.make_csr("uccx1.cc.example.com", ["uccx1.cc.example.com"],
                                    key=certfactory.rsa_key())
    now = dt.datetime.now(dt.UTC)

    def leaf(eku):
        return x509build.leaf_certificate(
            csr.subject, csr.public_key(), issuer=(root.key, root.cert.subject),
            sans=csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value,
            not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=300),
            eku=eku)

    server_only = leaf([ExtendedKeyUsageOID.SERVER_AUTH])
    check = certs.check_signed_certificate
    assert check(server_only, csr, [root.cert], unit="tomcat", require_eku=("serverAuth",)).ok
    r = check(server_only, csr, [root.cert], unit="tomcat",
              require_eku=("serverAuth", "clientAuth"))
    assert r.codes == {GateCode.EKU} and "clientAuth" in r.reasons[0]
    assert check(leaf(None), csr, [root.cert], unit="tomcat",
                 require_eku=("serverAuth", "clientAuth")).ok
    assert topology.client_auth_notice("uccx-publisher", "12.5.1", "tomcat") == "FN74382"
    with pytest.raises(InputError):
        RenewTomcat.__init__(object.__new__(RenewTomcat), None, None,  # type: ignore[arg-type]
                             key_size=384)


@pytest.mark.slow
def test_cckit_run_renew_tomcat(mock, tmp_path):
    """`cckit run renew_tomcat` against the 12.5 site: the record says complete, schema 1,
    and every RSA handshake presents the renewed (CA-signed) tomcat."""
    from tests.test_runbooks import CONFIRM, assert_no_secret, cckit, secrets_of

    out = tmp_path / "run"
    r = cckit("run", "renew_tomcat", "--site", str(mock.site_file), *CONFIRM,
              "--out", str(out), "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "renew_tomcat: OK" in r.stdout
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "complete" and status["schema"] == 1
    rsa = [p for p in status["presented"] if p["client"] == "rsa"]
    assert rsa and all(p["cn"].endswith(".cc.example.com") for p in rsa)
    browser = [p for p in status["presented"] if p["client"] == "browser"]
    # 12.5: no ECDSA client view (RENEW_TOMCAT.clients); a browser is shown the same renewed tomcat
    assert len(rsa) + len(browser) == len(status["presented"])
    assert [p["sha256"] for p in browser] == [p["sha256"] for p in rsa]
    assert assert_no_secret(out, secrets_of(mock)) > 3


def test_multi_san_one_csr_for_both_uccx_nodes(session, mock, tmp_path):
    """multi_san on 12.5: one CSR on the publisher naming both UCCX nodes, signed once,
    uploaded on the publisher only (the node distributes it), presented by both."""
    ca = get_adapter("lab", directory=tmp_path / "labca")
    proc = RenewTomcat(session, ca, multi_san=True)
    results = proc.run_all()
    assert results[-1].ok, results[-1]
    pub, sub = proc.signed["uccx-pub"], proc.signed["uccx-sub"]
    assert pub.certificate == sub.certificate
    assert {"DNS:uccx1.cc.example.com", "DNS:uccx2.cc.example.com"} <= set(
        certs.describe(pub.certificate).sans)
    assert proc.signed["sm"].certificate != pub.certificate  # SocialMiner: its own CSR
    sent = [(j["node"], j["command"]) for j in journal.read(mock.state_dir)]
    assert ("uccx-pub", "set csr gen multi-server tomcat") in sent
    assert not any(n == "uccx-sub" and c.startswith(("set csr gen", "set cert import own"))
                   for n, c in sent)
    ops = [json.loads(x) for x in (tmp_path / "run" / "operations.jsonl").read_text()
           .splitlines()]
    uploads = sorted(o["node"] for o in ops if o["operation"] == "upload_identity")
    assert uploads == ["sm", "uccx-pub"]  # the subscriber already stores it: not uploaded
    for (node, _port), r in presented(session, "rsa").items():
        assert r.cert.sha256 == certs.fingerprint_sha256(proc.signed[node].certificate), node


def test_multi_san_refused_where_the_version_lacks_it(tmp_path):
    with running_site(tmp_path / "mock", version="11.5.1.10000-61", restart_seconds=0.1) as m, \
            SiteSession(load_site(m.site_file), workdir=tmp_path / "run", tls_timeout=3) as s:
        state = mock_state(m)
        proc = RenewTomcat(s, get_adapter("lab", directory=tmp_path / "labca"), multi_san=True)
        with pytest.raises(InputError, match=r"multi_san needs UCCX 11.6\(2\) or later"):
            proc.generate_csrs()
        assert mock_state(m) == state


# ------------------------------------------------------------------ a real browser afterwards
def _chromium_loads(home, urls: list[str], hosts: list[str]) -> dict[str, str]:
    """url -> "ok" or the network error, in a fresh Chromium trusting what ``home`` holds."""
    return {url: shown.outcome for url, shown in chromium.load(home, urls, hosts).items()}


@pytest.mark.slow
@chromium.needs_chromium
@pytest.mark.parametrize("multi_san", [False, True])
def test_chromium_trusting_only_the_lab_root_loads_every_port(session, tmp_path, multi_san):
    ca = get_adapter("lab", directory=tmp_path / "labca")
    proc = RenewTomcat(session, ca, multi_san=multi_san)
    assert proc.run_all()[-1].ok
    urls = [f"https://{n.fqdn}:{wp.connect}/" for n in session.nodes for wp in n.web_ports]
    hosts = sorted({n.fqdn for n in session.nodes})
    assert len(urls) == 12  # 5 + 5 UCCX web ports, 2 SocialMiner
    # a browser profile trusting nothing of ours: every port is a certificate error
    empty = tmp_path / "home-empty"
    nssdb(empty)
    refused = _chromium_loads(empty, urls, hosts)
    assert all("ERR_CERT_AUTHORITY_INVALID" in v for v in refused.values()), refused
    # the same with the lab CA's root (only the root: the nodes send the intermediate)
    home = tmp_path / "home-root"
    root = tmp_path / "root.pem"
    root.write_bytes(certfactory.pem(ca.root_certificate))
    db = nssdb(home, root)
    listed = subprocess.run(["certutil", "-L", "-d", f"sql:{db}"], check=True,
                            capture_output=True, text=True).stdout
    assert listed.count("C,,") == 1  # exactly one trusted certificate: the root
    assert _chromium_loads(home, urls, hosts) == {u: "ok" for u in urls}
