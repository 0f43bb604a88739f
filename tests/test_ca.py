"""CA adapters: lab CA, files outbox/inbox, AD CS (certsrv mocked at its boundary)."""

from __future__ import annotations

import json
import stat
import sys
import types
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID

from cckit import certs
from cckit._internal.fs import safe_name
from cckit.ca import get_adapter, sign_all
from cckit.ca.files import FilesCA, issuer_path
from cckit.ca.lab import LabCA
from cckit.certs import public_key_sha256
from cckit.credentials import SecretRef
from cckit.errors import (
    AuthenticationError,
    CertificateLoadError,
    InputError,
    WaitingForCA,
)

from . import certfactory as cf


def gate(signed, csr):
    return certs.check_signed_certificate(signed.certificate, csr, signed.chain)


# --------------------------------------------------------------------------- lab CA


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lab")


def test_lab_creates_once_and_reuses(lab_dir):
    a = LabCA(lab_dir)
    root = a.root_certificate
    assert certs.describe(root).is_ca and certs.describe(root).self_signed
    assert certs.describe(root).key_detail == "secp384r1"
    b = LabCA(lab_dir)
    assert certs.fingerprint_sha256(b.root_certificate) == certs.fingerprint_sha256(root)
    assert [certs.fingerprint_sha256(c) for c in b.chain] == [
        certs.fingerprint_sha256(c) for c in a.chain]
    assert len(b.chain) == 2 and b.chain[-1] == root
    for name in ("root.key", "intermediate.key"):
        assert stat.S_IMODE((lab_dir / name).stat().st_mode) == 0o600
        assert (lab_dir / name).read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert not list(lab_dir.glob(".*.tmp"))
    assert b.describe() == f"lab CA (EC P-384, with intermediate) at {lab_dir}"


def test_lab_signed_cert_passes_gate(lab_dir):
    ca = LabCA(lab_dir)
    _, csr = cf.make_csr("uccx1-EC.cc.example.com", ["uccx1.cc.example.com"])
    assert ca.collect("uccx1", csr) is None
    ca.submit("uccx1", csr)
    signed = ca.collect("uccx1", csr)
    assert signed is not None and signed.node == "uccx1"
    result = gate(signed, csr)
    assert result.reasons == ()
    assert result.chain_checked and result.chain[-1].subject_cn.startswith("cckit lab EC root")
    cert = signed.certificate
    assert cert.signature_hash_algorithm.name == "sha384"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_agreement
    cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert 729 <= (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 731
    assert signed.source == f"lab CA {lab_dir}"
    assert (lab_dir / "issued" / "uccx1.pem").exists()
    # submitting again is harmless: same certificate
    ca.submit("uccx1", csr)
    assert ca.collect("uccx1", csr).certificate == cert
    assert LabCA(lab_dir).collect("uccx1", csr).certificate == cert


def test_lab_new_csr_needs_a_new_submit(lab_dir):
    ca = LabCA(lab_dir)
    _, old = cf.make_csr()
    ca.submit("uccx2", old)
    _, new = cf.make_csr()
    assert ca.collect("uccx2", new) is None
    ca.submit("uccx2", new)
    assert public_key_sha256(ca.collect("uccx2", new).certificate) == public_key_sha256(new)
    assert ca.collect("uccx2", old) is None


def test_lab_adds_cn_as_san_when_csr_has_none(lab_dir):
    ca = LabCA(lab_dir)
    _, csr = cf.make_csr("sm1.cc.example.com", sans=[])
    ca.submit("sm1", csr)
    cert = ca.collect("sm1", csr).certificate
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["sm1.cc.example.com"]
    assert cert.subject == csr.subject


def test_lab_hostile_node_name_stays_inside(tmp_path):
    home = tmp_path / "ca"
    ca = LabCA(home, intermediate=False)
    _, csr = cf.make_csr()
    before = set(tmp_path.rglob("*"))
    hostile = ("../../escape", "/etc/passwd", "..", "a/b\\c", "a_b", "a/b")
    for node in hostile:
        ca.submit(node, csr)
        assert ca.collect(node, csr).node == node
    created = set(tmp_path.rglob("*")) - before
    assert all(p.resolve().is_relative_to(home.resolve()) for p in created)
    issued = sorted(p.name for p in (home / "issued").iterdir() if p.suffix == ".pem")
    assert len(issued) == len(hostile)  # one file each, no collisions
    assert all("/" not in n and not n.startswith(".") for n in issued)
    assert safe_name("a/b") != safe_name("a_b")
    with pytest.raises(InputError):
        ca.submit("", csr)


def test_lab_rsa_mode_is_refused_by_the_gate(lab_dir):
    ca = LabCA(lab_dir, algorithm="rsa")
    _, csr = cf.make_csr()
    ca.submit("uccx1", csr)
    signed = ca.collect("uccx1", csr)
    assert (lab_dir / "rsa" / "root.pem").exists()
    assert certs.describe(signed.certificate).signed_with == "RSA"
    assert certs.describe(signed.chain[-1]).key_type == "RSA"
    reasons = gate(signed, csr).reasons
    assert len(reasons) == 1 and "signed it with RSA" in reasons[0]
    # the EC lab CA never hands out the RSA-signed certificate
    ec_ca = LabCA(lab_dir)
    assert ec_ca.collect("uccx1", csr) is None
    ec_ca.submit("uccx1", csr)
    assert certs.describe(ec_ca.collect("uccx1", csr).certificate).signed_with == "EC"
    assert ca.collect("uccx1", csr).certificate == signed.certificate
    assert "RSA" in ca.describe()


def test_lab_without_intermediate(tmp_path):
    ca = LabCA(tmp_path, intermediate=False)
    _, csr = cf.make_csr()
    signed = sign_all(ca, {"uccx1": csr})["uccx1"]
    assert signed.chain == (ca.root_certificate,)
    assert signed.certificate.issuer == ca.root_certificate.subject
    assert gate(signed, csr).ok
    assert not (tmp_path / "intermediate.pem").exists()


def test_lab_bad_algorithm(tmp_path):
    with pytest.raises(InputError, match="'ec' or 'rsa'"):
        LabCA(tmp_path, algorithm="dsa")


# --------------------------------------------------------------------------- files CA


@pytest.fixture(scope="module")
def pki():
    root = cf.make_root("Corp EC Root")
    inter = cf.make_intermediate(root, "Corp EC Issuing")
    other = cf.make_root("Unrelated Root")
    return root, inter, other


def _signed(pki, csr):
    _, inter, _ = pki
    return cf.sign_csr(inter, csr, not_before=cf.NOW.replace(year=2025),
                       not_after=cf.NOW.replace(year=2027))


def _fca(tmp_path) -> FilesCA:
    return FilesCA(tmp_path / "out", tmp_path / "in", site="lab1")


def test_files_submit_writes_outbox_and_instructions(tmp_path):
    ca = _fca(tmp_path)
    _, csr = cf.make_csr("uccx1-EC.cc.example.com", ["uccx1.cc.example.com"])
    assert ca.collect("uccx1", csr) is None  # no inbox yet
    ca.submit("uccx1", csr)
    path = tmp_path / "out" / "uccx1.csr"
    assert certs.load_csr(path).public_bytes(serialization.Encoding.DER) == \
        csr.public_bytes(serialization.Encoding.DER)
    text = (tmp_path / "out" / "INSTRUCTIONS.txt").read_text()
    assert "uccx1.csr" in text and "uccx1-EC.cc.example.com" in text
    assert "DNS:uccx1.cc.example.com" in text and "key:  EC secp384r1" in text
    assert public_key_sha256(csr) in text
    assert "must sign with an EC key (ECDSA)" in text
    assert str((tmp_path / "in").resolve()) in text and ".p7b" in text
    assert (tmp_path / "in").is_dir()
    # same CSR: file not rewritten
    mtime = path.stat().st_mtime_ns
    ca.submit("uccx1", csr)
    assert path.stat().st_mtime_ns == mtime
    # a different CSR replaces it
    _, csr2 = cf.make_csr("uccx1-EC.cc.example.com")
    ca.submit("uccx1", csr2)
    assert public_key_sha256(certs.load_csr(path)) == public_key_sha256(csr2)
    assert ca.collect("uccx1", csr2) is None
    assert str(tmp_path / "out") in ca.waiting_hint() and str(tmp_path / "in") in ca.waiting_hint()


def test_files_full_chain_pem_with_crlf(tmp_path, pki):
    root, inter, other = pki
    ca = _fca(tmp_path)
    _, csr = cf.make_csr()
    ca.submit("uccx1", csr)
    assert ca.collect("uccx1", csr) is None
    leaf = _signed(pki, csr)
    bundle = cf.pem(leaf, inter.cert, root.cert).replace(b"\n", b"\r\n")
    (tmp_path / "in" / "certnew (3).cer").write_bytes(b"Issued by Corp\r\n" + bundle)
    (tmp_path / "in" / "unrelated.pem").write_bytes(cf.pem(other.cert))
    (tmp_path / "in" / ".DS_Store").write_bytes(b"\0junk")
    (tmp_path / "in" / "README.md").write_text("notes")
    signed = ca.collect("uccx1", csr)
    assert signed.certificate == leaf
    assert signed.chain == (inter.cert, root.cert)
    assert signed.source.endswith("certnew (3).cer")
    assert certs.check_signed_certificate(signed.certificate, csr, signed.chain,
                                          now=cf.NOW).ok


def test_files_der_leaf_and_separate_ca_files_two_nodes(tmp_path, pki):
    root, inter, _ = pki
    ca = _fca(tmp_path)
    _, csr1 = cf.make_csr("uccx1-EC.cc.example.com", ["uccx1.cc.example.com"])
    _, csr2 = cf.make_csr("uccx2-EC.cc.example.com", ["uccx2.cc.example.com"])
    leaf1, leaf2 = _signed(pki, csr1), _signed(pki, csr2)
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "a.der").write_bytes(cf.der(leaf2))   # names say nothing about the node
    (inbox / "b.crt").write_bytes(cf.pem(leaf1))
    (inbox / "root.cer").write_bytes(cf.der(root.cert))
    p7 = pkcs7.serialize_certificates([inter.cert], serialization.Encoding.DER)
    (inbox / "issuing.p7b").write_bytes(p7)
    s1, s2 = ca.collect("uccx1", csr1), ca.collect("uccx2", csr2)
    assert s1.certificate == leaf1 and s2.certificate == leaf2
    assert s1.chain == s2.chain == (inter.cert, root.cert)
    for s, csr in ((s1, csr1), (s2, csr2)):
        assert certs.check_signed_certificate(s.certificate, csr, s.chain, now=cf.NOW).ok


def test_files_sign_all_waits_then_succeeds(tmp_path, pki):
    root, inter, _ = pki
    ca = _fca(tmp_path)
    _, csr1 = cf.make_csr("uccx1-EC.cc.example.com", ["uccx1.cc.example.com"])
    _, csr2 = cf.make_csr("sm1-EC.cc.example.com", ["sm1.cc.example.com"])
    csrs = {"uccx1": csr1, "sm1": csr2}
    with pytest.raises(WaitingForCA) as e:
        sign_all(ca, csrs)
    assert "uccx1" in str(e.value) and "sm1" in str(e.value)
    assert str(tmp_path / "in") in e.value.hint
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "uccx1.csr", "sm1.csr", "INSTRUCTIONS.txt"}
    (tmp_path / "in" / "chain.pem").write_bytes(cf.pem(inter.cert, root.cert))
    (tmp_path / "in" / "x.pem").write_bytes(cf.pem(_signed(pki, csr1)))
    with pytest.raises(WaitingForCA) as e:
        sign_all(ca, csrs)
    assert "sm1" in str(e.value) and "uccx1" not in str(e.value).split("yet for")[1]
    (tmp_path / "in" / "y.pem").write_bytes(cf.pem(_signed(pki, csr2)))
    signed = sign_all(ca, csrs)
    assert set(signed) == {"uccx1", "sm1"}
    assert signed["sm1"].certificate.subject == csr2.subject


def test_files_garbage_file_is_named(tmp_path, pki):
    ca = _fca(tmp_path)
    _, csr = cf.make_csr()
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "leaf.pem").write_bytes(cf.pem(_signed(pki, csr)))
    (inbox / "notes.txt").write_text("call Bob about the CA\n")
    (inbox / "broken.crt").write_bytes(cf.pem(pki[0].cert)[:200])
    (inbox / "certs.zip").write_bytes(b"PK\x03\x04rest-of-zip")
    with pytest.raises(CertificateLoadError) as e:
        ca.collect("uccx1", csr)
    msg = str(e.value)
    assert "notes.txt" in msg and "does it belong in the inbox" in msg
    assert "broken.crt" in msg and "truncated" in msg
    assert "certs.zip" in msg and "zip archive" in msg
    assert e.value.file and e.value.file.endswith(("broken.crt", "certs.zip", "notes.txt"))
    assert "move it out" in e.value.hint


def test_files_private_key_in_inbox_is_refused(tmp_path):
    ca = _fca(tmp_path)
    key, csr = cf.make_csr()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "server.pem").write_bytes(cf.key_pem(key))
    with pytest.raises(CertificateLoadError, match="private key") as e:
        ca.collect("uccx1", csr)
    assert b"PRIVATE" not in str(e.value).encode() or "contents are not shown" in str(e.value)


def test_files_prefers_leaf_with_complete_chain(tmp_path, pki):
    root, inter, other = pki
    ca = _fca(tmp_path)
    _, csr = cf.make_csr()
    lonely = cf.sign_csr(cf.make_intermediate(cf.make_root("Gone Root"), "Gone CA"), csr)
    good = _signed(pki, csr)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "1.pem").write_bytes(cf.pem(lonely))
    (tmp_path / "in" / "2.pem").write_bytes(cf.pem(good, inter.cert, root.cert, other.cert))
    assert ca.collect("n", csr).certificate == good


def test_issuer_path_ignores_same_name_impostor(pki):
    root, inter, _ = pki
    fake_root = cf.make_root("Corp EC Root")  # same name, different key
    _, csr = cf.make_csr()
    leaf = _signed(pki, csr)
    assert issuer_path(leaf, [fake_root.cert, root.cert, inter.cert], now=cf.NOW) == (
        inter.cert, root.cert)
    assert issuer_path(leaf, [fake_root.cert, inter.cert], now=cf.NOW) == (inter.cert,)


# --------------------------------------------------------------------------- get_adapter


def test_get_adapter(tmp_path):
    ca = get_adapter("lab", directory=tmp_path)
    assert isinstance(ca, LabCA) and ca.directory == tmp_path
    fca = get_adapter("files", outbox=tmp_path / "o", inbox=tmp_path / "i")
    assert isinstance(fca, FilesCA)
    with pytest.raises(InputError) as e:
        get_adapter("nope")
    assert "nope" in str(e.value) and "files" in e.value.hint and "lab" in e.value.hint


# --------------------------------------------------------------------------- AD CS


class _FakeCertsrvModule(types.ModuleType):
    class RequestDeniedException(Exception):
        def __init__(self, message, response=""):
            super().__init__(message)

    class CouldNotRetrieveCertificateException(Exception):
        def __init__(self, message, response=""):
            super().__init__(message)

    class CertificatePendingException(Exception):
        def __init__(self, req_id):
            super().__init__(f"pending {req_id}")
            self.req_id = req_id


@pytest.fixture
def fake_certsrv(monkeypatch, pki):
    """A stand-in for the certsrv package: records calls, signs with the test PKI."""
    root, inter, _ = pki
    mod = _FakeCertsrvModule("certsrv")
    state = {"mode": "issue", "calls": [], "inits": [], "pending": {}}

    class Certsrv:
        def __init__(self, server, username, password, auth_method="basic", cafile=None,
                     timeout=30):
            state["inits"].append((server, username, password, auth_method, cafile))

        def get_cert(self, csr, template, encoding="b64", attributes=None):
            state["calls"].append(("get_cert", template, encoding))
            req = x509.load_pem_x509_csr(csr.encode())
            if state["mode"] == "deny":
                raise mod.RequestDeniedException("Denied by Policy Module", "")
            if state["mode"] == "pending":
                state["pending"]["7"] = req
                raise mod.CertificatePendingException("7")
            if state["mode"] == "401":
                import requests

                resp = requests.Response()
                resp.status_code = 401
                raise requests.exceptions.HTTPError("401", response=resp)
            return cf.pem(_signed(pki, req))

        def get_existing_cert(self, req_id, encoding="b64"):
            state["calls"].append(("get_existing_cert", req_id))
            if state["mode"] == "pending":
                raise mod.CouldNotRetrieveCertificateException("Taken Under Submission", "")
            return cf.pem(_signed(pki, state["pending"][req_id]))

        def get_ca_cert(self, encoding="b64"):
            state["calls"].append(("get_ca_cert", encoding))
            return cf.pem(inter.cert)

        def get_chain(self, encoding="bin"):
            state["calls"].append(("get_chain", encoding))
            return pkcs7.serialize_certificates([root.cert, inter.cert],
                                                serialization.Encoding.DER)

    mod.Certsrv = Certsrv
    monkeypatch.setitem(sys.modules, "certsrv", mod)
    monkeypatch.setenv("CCKIT_TEST_ADCS_PW", "s3cret-pw")
    return state


def _adcs(tmp_path, **kw):
    from cckit.ca.certsrv import ADCSCA

    cafile = tmp_path / "ca.pem"
    cafile.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    return ADCSCA("ca.corp.example", "CiscoECDSA", username="CORP\\svc",
                  password=SecretRef("env", "CCKIT_TEST_ADCS_PW"),
                  state_dir=tmp_path / "adcs", cafile=cafile, **kw)


def test_adcs_issues_and_builds_chain(tmp_path, fake_certsrv, pki):
    root, inter, _ = pki
    ca = _adcs(tmp_path)
    _, csr = cf.make_csr()
    signed = sign_all(ca, {"uccx1": csr})["uccx1"]
    assert signed.chain == (inter.cert, root.cert)
    assert certs.check_signed_certificate(signed.certificate, csr, signed.chain,
                                          now=cf.NOW).ok
    assert fake_certsrv["inits"] == [("ca.corp.example", "CORP\\svc", "s3cret-pw", "basic",
                                      str(tmp_path / "ca.pem"))]
    assert ("get_cert", "CiscoECDSA", "b64") in fake_certsrv["calls"]
    # a rerun (new process) uses what is stored: no new request
    n = len(fake_certsrv["calls"])
    again = _adcs(tmp_path)
    again.submit("uccx1", csr)
    assert again.collect("uccx1", csr).certificate == signed.certificate
    assert len(fake_certsrv["calls"]) == n
    assert "s3cret-pw" not in repr(ca.__dict__)


def test_adcs_signing_key_from_the_published_ca_certificate(tmp_path, fake_certsrv, pki):
    ca = _adcs(tmp_path)
    key = ca.signing_key()
    assert key.issuer_subject == pki[1].cert.subject.rfc4514_string()
    assert key.signs_ec and "certnew.cer" in key.learnt_from
    assert ca.signing_key() == key  # cached in state_dir: asked once
    assert [c for c in fake_certsrv["calls"] if c[0] == "get_ca_cert"] == [
        ("get_ca_cert", "b64")]


def test_adcs_pending_then_issued(tmp_path, fake_certsrv):
    ca = _adcs(tmp_path)
    _, csr = cf.make_csr()
    fake_certsrv["mode"] = "pending"
    with pytest.raises(WaitingForCA) as e:
        sign_all(ca, {"uccx1": csr})
    assert "approval" in e.value.hint
    pend = json.loads((tmp_path / "adcs" / "uccx1.pending.json").read_text())
    assert pend["req_id"] == "7"
    with pytest.raises(WaitingForCA):
        sign_all(_adcs(tmp_path), {"uccx1": csr})
    assert [c[0] for c in fake_certsrv["calls"]].count("get_cert") == 1  # never resubmitted
    fake_certsrv["mode"] = "issue"
    signed = sign_all(_adcs(tmp_path), {"uccx1": csr})["uccx1"]
    assert public_key_sha256(signed.certificate) == public_key_sha256(csr)


def test_adcs_denied_and_bad_credentials(tmp_path, fake_certsrv):
    _, csr = cf.make_csr()
    fake_certsrv["mode"] = "deny"
    with pytest.raises(InputError, match="Denied by Policy Module") as e:
        _adcs(tmp_path).submit("uccx1", csr)
    assert e.value.node == "uccx1"
    fake_certsrv["mode"] = "401"
    with pytest.raises(AuthenticationError) as e:
        _adcs(tmp_path).submit("uccx1", csr)
    # the hint says where the password comes from, without naming the variable (it may be
    # a pasted password)
    assert "environment variable named in" in e.value.hint
    assert "CCKIT_TEST_ADCS_PW" not in str(e.value) and "s3cret-pw" not in str(e.value)


def test_adcs_without_the_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "certsrv", None)
    _, csr = cf.make_csr()
    with pytest.raises(InputError, match="pip install certsrv"):
        _adcs(tmp_path).submit("uccx1", csr)


def test_unknown_or_missing_adapter_options_are_one_line_errors(tmp_path):
    with pytest.raises(InputError) as e:
        get_adapter("lab", directry=tmp_path)
    assert "unknown option directry" in str(e.value)
    assert "its options: directory, intermediate" in str(e.value)
    with pytest.raises(InputError, match="missing option server, template, username, password"):
        get_adapter("adcs")
