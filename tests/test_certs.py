"""cckit.certs with real certificates made here: loader, describe, and every gate refusal."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7

from cckit import certs, display
from cckit.errors import CckitError, CertificateLoadError, GateError

from .certfactory import (
    NOW,
    der,
    ec_key,
    key_pem,
    make_csr,
    make_intermediate,
    make_root,
    pem,
    rsa_key,
    sign_csr,
)


@pytest.fixture(scope="module")
def pki():
    root = make_root("Lab EC Root")
    inter = make_intermediate(root, "Lab EC Issuing")
    key, csr = make_csr()
    leaf = sign_csr(inter, csr)
    return {"root": root, "inter": inter, "key": key, "csr": csr, "leaf": leaf}


# --------------------------------------------------------------------------- loader


def test_loads_bundle_with_crlf_and_surrounding_text(pki):
    blob = (b"Subject: your certificate\r\nHere it is:\r\n"
            + pem(pki["leaf"], pki["inter"].cert, pki["root"].cert).replace(b"\n", b"\r\n")
            + b"\r\nRegards, the PKI team\r\n")
    got = certs.load_certificates(blob)
    assert [c.serial_number for c in got] == [
        pki["leaf"].serial_number, pki["inter"].cert.serial_number, pki["root"].cert.serial_number
    ]


def test_loads_der_and_pkcs7(pki, tmp_path):
    f = tmp_path / "leaf.cer"
    f.write_bytes(der(pki["leaf"]))
    assert certs.load_certificates(f)[0] == pki["leaf"]
    from cryptography.hazmat.primitives.serialization import Encoding

    p7 = pkcs7.serialize_certificates([pki["leaf"], pki["root"].cert], Encoding.DER)
    assert len(certs.load_certificates(p7)) == 2
    p7pem = pkcs7.serialize_certificates([pki["leaf"]], Encoding.PEM)
    assert certs.load_certificates(p7pem) == [pki["leaf"]]


def test_truncated_pem_is_refused(pki, tmp_path):
    blob = pem(pki["leaf"])
    f = tmp_path / "cut.pem"
    f.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CertificateLoadError, match="truncated") as e:
        certs.load_certificates(f)
    assert e.value.file == str(f)


def test_garbage_and_empty_are_refused(tmp_path):
    f = tmp_path / "junk.bin"
    f.write_bytes(b"\x00\x01not a certificate at all" * 10)
    with pytest.raises(CertificateLoadError, match="neither PEM, DER nor PKCS#7"):
        certs.load_certificates(f)
    with pytest.raises(CertificateLoadError, match="empty"):
        certs.load_certificates(b"  \n")
    with pytest.raises(CertificateLoadError, match="not valid base64"):
        certs.load_certificates(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")
    with pytest.raises(CertificateLoadError, match=r"not a valid X\.509"):
        certs.load_certificates(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(CertificateLoadError, match="cannot read"):
        certs.load_certificates(tmp_path / "missing.pem")


@pytest.mark.parametrize("form", ["pem", "pem-with-cert", "der", "truncated"])
def test_private_key_is_refused_and_never_echoed(pki, form):
    kp = key_pem(pki["key"])
    body = kp.decode().splitlines()[1]  # a line of the base64 key material
    from cryptography.hazmat.primitives import serialization

    blob = {
        "pem": kp,
        "pem-with-cert": pem(pki["leaf"]) + kp,
        "der": pki["key"].private_bytes(serialization.Encoding.DER,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()),
        "truncated": kp[: len(kp) // 2],
    }[form]
    with pytest.raises(CertificateLoadError, match="private key") as e:
        certs.load_certificates(blob, source="given.pem")
    assert body not in str(e.value)
    assert body not in repr(e.value)
    assert "given.pem" in str(e.value)


def test_csr_is_not_a_certificate_and_loads_as_csr(pki):
    from cryptography.hazmat.primitives.serialization import Encoding

    csr_pem = pki["csr"].public_bytes(Encoding.PEM)
    with pytest.raises(CertificateLoadError, match="signing request"):
        certs.load_certificates(csr_pem)
    assert certs.load_csr(b"notes\r\n" + csr_pem.replace(b"\n", b"\r\n")) == pki["csr"]
    assert certs.load_csr(pki["csr"].public_bytes(Encoding.DER)) == pki["csr"]
    with pytest.raises(CertificateLoadError, match="exactly one"):
        certs.load_csr(pem(pki["leaf"]))
    with pytest.raises(CertificateLoadError, match="not a valid certificate signing request"):
        certs.load_csr(b"\x30\x03\x02\x01\x00")


# --------------------------------------------------------------------------- describe


def test_describe_fields(pki):
    info = certs.describe(pki["leaf"], now=NOW)
    assert info.subject_cn == "uccx1-EC.cc.example.com"
    assert info.sans == ("DNS:uccx1.cc.example.com", "DNS:cc.example.com")
    assert info.issuer_cn == "Lab EC Issuing"
    assert info.key_type == "EC" and info.key_detail == "secp384r1" and info.key_bits == 384
    assert info.signature_algorithm == "ecdsa-with-SHA384" and info.signed_with == "EC"
    assert info.days_left == 730
    assert info.serial_hex == format(pki["leaf"].serial_number, "x")
    assert len(info.sha256.split(":")) == 32 and info.sha256 == info.sha256.upper()
    assert not info.self_signed and not info.is_ca
    root = certs.describe(pki["root"].cert, now=NOW)
    assert root.self_signed and root.is_ca
    rsa_root = certs.describe(make_root("R", key=rsa_key()).cert)
    assert (rsa_root.key_type, rsa_root.key_detail, rsa_root.signed_with) == ("RSA", "2048", "RSA")


def test_dataframe(pki):
    df = display.frame(certs.describe(c, now=NOW) for c in [pki["leaf"], pki["root"].cert])
    assert list(df["subject_cn"]) == ["uccx1-EC.cc.example.com", "Lab EC Root"]
    assert list(df["is_ca"]) == [False, True]
    assert df.loc[0, "sans"] == "DNS:uccx1.cc.example.com, DNS:cc.example.com"


# --------------------------------------------------------------------------- the gate


def chain_of(pki):
    return [pki["inter"].cert, pki["root"].cert]


def test_gate_accepts_good_certificate(pki):
    r = certs.gate_signed_certificate(pki["leaf"], pki["csr"], chain_of(pki), now=NOW)
    assert r.ok and r.chain_checked
    assert [c.subject_cn for c in r.chain] == ["Lab EC Issuing", "Lab EC Root"]
    assert r.summary().startswith("OK tomcat-ECDSA uccx1-EC.cc.example.com")


def test_gate_refuses_rsa_key_in_ecdsa_slot(pki):
    _key, csr = make_csr(key=rsa_key())
    leaf = sign_csr(pki["inter"], csr)
    with pytest.raises(GateError) as e:
        certs.gate_signed_certificate(leaf, csr, chain_of(pki), now=NOW, node="uccx-pub")
    assert any("RSA key but tomcat-ECDSA takes only EC" in r for r in e.value.reasons)
    assert e.value.node == "uccx-pub" and e.value.unit == "tomcat-ECDSA"


def test_gate_refuses_rsa_signed_ecdsa_and_recommends_rsa_only(pki):
    rsa_root = make_root("Corp RSA Root", key=rsa_key())
    leaf = sign_csr(rsa_root, pki["csr"])
    with pytest.raises(GateError) as e:
        certs.gate_signed_certificate(leaf, pki["csr"], [rsa_root.cert], now=NOW)
    (reason,) = e.value.reasons
    assert "signed it with RSA" in reason and "not presented to clients" in reason
    assert "SocialMiner" in reason and "chat" in reason and "RSA-only" in reason
    assert "rsa_only" in str(e.value)


def test_gate_refuses_cert_for_an_older_csr(pki):
    _, old_csr = make_csr(key=ec_key())  # same names, another key
    leaf = sign_csr(pki["inter"], old_csr)
    reasons = certs.check_signed_certificate(leaf, pki["csr"], chain_of(pki), now=NOW).reasons
    assert len(reasons) == 1 and "public key differs from the pending CSR" in reasons[0]


def test_gate_refuses_name_mismatch(pki):
    leaf = sign_csr(pki["inter"], pki["csr"], sans=["uccx1.cc.example.com", "evil.example.com"])
    reasons = certs.check_signed_certificate(leaf, pki["csr"], chain_of(pki), now=NOW).reasons
    assert reasons == (
        "CSR SAN and Certificate SAN does not match (missing DNS:cc.example.com; "
        "not in CSR DNS:evil.example.com)",
    )
    leaf = sign_csr(pki["inter"], pki["csr"], cn="other-EC.cc.example.com")
    reasons = certs.check_signed_certificate(leaf, pki["csr"], chain_of(pki), now=NOW).reasons
    assert reasons == ("subject CN 'other-EC.cc.example.com' differs from the CSR's "
                       "'uccx1-EC.cc.example.com'",)


def test_gate_refuses_expired_and_not_yet_valid(pki):
    expired = sign_csr(pki["inter"], pki["csr"], not_before=NOW - dt.timedelta(days=400),
                       not_after=NOW - dt.timedelta(days=1))
    reasons = certs.check_signed_certificate(expired, pki["csr"], chain_of(pki), now=NOW).reasons
    assert any(r.startswith("expired on") for r in reasons)
    future = sign_csr(pki["inter"], pki["csr"], not_before=NOW + dt.timedelta(days=2))
    reasons = certs.check_signed_certificate(future, pki["csr"], chain_of(pki), now=NOW).reasons
    assert any(r.startswith("not yet valid") for r in reasons)


def test_gate_refuses_incomplete_chain(pki):
    # intermediate missing
    r = certs.check_signed_certificate(pki["leaf"], pki["csr"], [pki["root"].cert], now=NOW)
    assert len(r.reasons) == 1 and "chain does not verify up to the given root" in r.reasons[0]
    assert "'Lab EC Root'" in r.reasons[0]
    # no root at all
    r = certs.check_signed_certificate(pki["leaf"], pki["csr"], [pki["inter"].cert], now=NOW)
    assert r.reasons == ("chain incomplete: no root CA certificate given (add the self-signed "
                         "root of the issuing CA)",)
    r = certs.check_signed_certificate(pki["leaf"], pki["csr"], [], now=NOW)
    assert "chain incomplete" in r.reasons[0]


def test_gate_refuses_chain_to_another_root(pki):
    other = make_root("Someone Else Root")
    r = certs.check_signed_certificate(pki["leaf"], pki["csr"],
                                       [pki["inter"].cert, other.cert], now=NOW)
    assert len(r.reasons) == 1 and "does not verify" in r.reasons[0]


def test_gate_refuses_non_ca_trust_certificate(pki):
    not_ca = make_root("Not A CA", ca=False)
    leaf = sign_csr(not_ca, pki["csr"])
    r = certs.check_signed_certificate(leaf, pki["csr"], [not_ca.cert], now=NOW)
    assert any("'Not A CA' is not a CA certificate" in x for x in r.reasons)
    assert certs.check_trust_certificate(pki["root"].cert) == []


def test_gate_lists_every_reason_at_once(pki):
    rsa_root = make_root("Corp RSA Root", key=rsa_key())
    _, other_csr = make_csr(cn="x-EC.cc.example.com", key=ec_key(ec.SECP256R1()))
    leaf = sign_csr(rsa_root, other_csr, not_after=NOW - dt.timedelta(days=1),
                    not_before=NOW - dt.timedelta(days=30))
    r = certs.check_signed_certificate(leaf, pki["csr"], [], now=NOW)
    text = " | ".join(r.reasons)
    for needle in ("signed it with RSA", "public key differs", "subject CN", "expired",
                   "chain incomplete"):
        assert needle in text
    assert not r.ok and r.summary().startswith("REFUSED")


def test_gate_rsa_unit_and_bad_unit(pki):
    _key, csr = make_csr(key=rsa_key())
    rsa_root = make_root("Corp RSA Root", key=rsa_key())
    leaf = sign_csr(rsa_root, csr)
    assert certs.check_signed_certificate(leaf, csr, [rsa_root.cert], unit="tomcat", now=NOW).ok
    r = certs.check_signed_certificate(pki["leaf"], pki["csr"], None, unit="tomcat", now=NOW)
    assert "EC key but tomcat takes only RSA" in r.reasons[0]
    with pytest.raises(ValueError):
        certs.check_signed_certificate(pki["leaf"], pki["csr"], None, unit="ipsec")


def test_gate_unsupported_curve(pki):
    _, csr = make_csr(key=ec_key(ec.SECP256K1()))
    leaf = sign_csr(pki["inter"], csr)
    r = certs.check_signed_certificate(leaf, csr, chain_of(pki), now=NOW)
    assert any("secp256k1 is not one VOS accepts" in x for x in r.reasons)


def test_error_tree_root():
    assert issubclass(GateError, CckitError) and issubclass(CertificateLoadError, CckitError)
    e = GateError(["a", "b"], node="n1", unit="tomcat-ECDSA", hint="do x")
    assert "[node n1, unit tomcat-ECDSA]" in str(e) and "What to do: do x" in str(e)


def test_gate_accepts_the_cn_added_as_a_san(pki):
    leaf = sign_csr(pki["inter"], pki["csr"], sans=["uccx1.cc.example.com", "cc.example.com",
                                                    "uccx1-EC.cc.example.com"])
    assert certs.check_signed_certificate(leaf, pki["csr"], chain_of(pki), now=NOW).ok
