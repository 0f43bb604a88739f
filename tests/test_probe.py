"""cckit.probe against real TLS servers on loopback (stdlib ssl server threads)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cckit import display
from cckit import probe as P
from cckit.errors import CertificateLoadError, ProbeError

from .certfactory import CA, ec_key, make_root, rsa_key

pytestmark = pytest.mark.timeout(60)
HAVE_OPENSSL = shutil.which("openssl") is not None
NOW = dt.datetime.now(dt.UTC)


def _leaf(ca: CA, cn: str, key) -> x509.Certificate:
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                       critical=False)
    )
    return ca.sign(b)


def _write(dirpath: Path, name: str, cert: x509.Certificate, key) -> tuple[Path, Path]:
    cp, kp = dirpath / f"{name}.pem", dirpath / f"{name}.key"
    cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    return cp, kp


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    root = make_root("Probe Test Root", not_before=NOW - dt.timedelta(days=10),
                     not_after=NOW + dt.timedelta(days=365))
    other = make_root("Some Other Root", not_before=NOW - dt.timedelta(days=10),
                      not_after=NOW + dt.timedelta(days=365))
    rk, ek = rsa_key(), ec_key(ec.SECP384R1())
    rsa_cert = _leaf(root, "uccx1.cc.example.com", rk)
    ec_cert = _leaf(root, "uccx1-EC.cc.example.com", ek)
    files = {
        "rsa": _write(d, "rsa", rsa_cert, rk),
        "ec": _write(d, "ec", ec_cert, ek),
    }
    (d / "root.pem").write_bytes(root.pem)
    (d / "other.pem").write_bytes(other.pem)
    return {"dir": d, "files": files, "rsa": rsa_cert, "ec": ec_cert,
            "root": d / "root.pem", "other": d / "other.pem"}


@contextlib.contextmanager
def tls_server(chains: list[tuple[Path, Path]], prefer: str | None = None) -> Iterator[int]:
    """A TLS server on 127.0.0.1 presenting every chain given (RSA first, then EC);
    ``prefer``: TLS 1.2 only, choosing by this cipher order of its own."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    for cert, key in chains:
        ctx.load_cert_chain(cert, key)
    if prefer:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
        ctx.set_ciphers(prefer)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    with contextlib.suppress(OSError):
                        tls.recv(1)
            except (ssl.SSLError, OSError):
                pass
            finally:
                conn.close()

    t = threading.Thread(target=serve, name=f"tls-{port}", daemon=True)
    t.start()
    try:
        yield port
    finally:
        stop.set()
        t.join(5)
        listener.close()
        assert not t.is_alive(), "server thread did not stop"


@pytest.fixture(scope="module")
def dual(pki) -> Iterator[int]:
    with tls_server([pki["files"]["rsa"], pki["files"]["ec"]]) as port:
        yield port


@pytest.fixture(scope="module")
def rsa_only(pki) -> Iterator[int]:
    with tls_server([pki["files"]["rsa"]]) as port:
        yield port


def _by(results: list[P.Presented]) -> dict[tuple[str, str], P.Presented]:
    return {(r.client, r.tls_version): r for r in results}


def _versions() -> tuple[str, ...]:
    return ("1.2", "1.3") if HAVE_OPENSSL else ("1.2",)


def test_dual_server_presents_ec_to_ecdsa_and_rsa_to_rsa(pki, dual):
    got = _by(P.probe("127.0.0.1", dual, versions=_versions()))
    for v in _versions():
        e, r = got["ecdsa", v], got["rsa", v]
        assert (e.status, r.status) == ("ok", "ok"), (e, r)
        assert e.cert.subject_cn == "uccx1-EC.cc.example.com"
        assert e.cert.key_type == "EC" and e.cert.key_detail == "secp384r1"
        assert r.cert.subject_cn == "uccx1.cc.example.com" and r.cert.key_type == "RSA"
        assert e.cert.sha256 == pki["ec"].fingerprint(hashes.SHA256()).hex(":").upper()
        assert e.cert.issuer_cn == "Probe Test Root"
        assert e.trusted is None and r.trusted is None  # no bundle given
        assert e.reached and r.reached


def test_browser_is_shown_what_the_server_prefers(pki, dual):
    """A browser offers both: a plain OpenSSL server with both chains answers TLS 1.3 with
    the client's first signature algorithm (ECDSA); a TLS 1.2 server that prefers its own
    cipher order (as UCCX 11.x web servers do, Cisco 201000/210528) picks for it."""
    (b,) = P.probe("127.0.0.1", dual, versions=("1.2",), clients=("browser",))
    assert (b.status, b.tls_version, b.cert.key_type) == ("ok", "1.3", "EC")
    for prefer, key in (("aRSA:aECDSA", "RSA"), ("aECDSA:aRSA", "EC")):
        with tls_server([pki["files"]["rsa"], pki["files"]["ec"]], prefer=prefer) as port:
            got = _by(P.probe("127.0.0.1", port, versions=("1.2",)))
        b = got["browser", "1.2"]
        assert b.cert.key_type == key
        assert b.cipher.startswith("ECDHE-RSA-" if key == "RSA" else "ECDHE-ECDSA-"), b.cipher
        assert got["ecdsa", "1.2"].cert.key_type == "EC"  # the others as before
        assert got["rsa", "1.2"].cert.key_type == "RSA"


def test_reuse_takes_a_browser_s_tls12_view_for_its_key_type_only(pki, rsa_only):
    """``reuse``: the view of the single-type client of the key type a TLS 1.2 browser was
    shown is that handshake's; the other type is still asked: the same views as without."""
    with tls_server([pki["files"]["rsa"], pki["files"]["ec"]], prefer="aRSA:aECDSA") as port:
        targets = [("127.0.0.1", port, None), ("127.0.0.1", rsa_only, None)]
        plain = P.probe_each(targets, versions=("1.2",))
        reused = P.probe_each(targets, versions=("1.2",), reuse=True)
    key = [(r.port, r.client, r.status, r.cert and r.cert.sha256) for r in plain]
    assert key == [(r.port, r.client, r.status, r.cert and r.cert.sha256) for r in reused]
    assert [r.cipher.startswith("ECDHE-RSA") for r in reused if r.port == port] == [
        True, False, True]  # the RSA view is the browser's handshake, the ECDSA one its own
    assert reused[1].cipher.startswith("ECDHE-ECDSA") and reused[1].cert.key_type == "EC"


def test_json_per_target(pki, dual, rsa_only, capsys):
    assert P.main([f"127.0.0.1:{dual}", f"127.0.0.1:{rsa_only}", "--json",
                   "--cafile", str(pki["root"])]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {f"127.0.0.1:{dual}", f"127.0.0.1:{rsa_only}"}
    for entry in doc.values():
        assert set(entry) == {"browser", "ecdsa_only", "rsa_only"}
        for view in entry.values():
            assert {"key_type", "sha256", "subject", "issuer", "trusted"} <= set(view)
    both, rsa = doc[f"127.0.0.1:{dual}"], doc[f"127.0.0.1:{rsa_only}"]
    assert both["ecdsa_only"]["sha256"] == pki["ec"].fingerprint(hashes.SHA256()).hex(":").upper()
    assert both["ecdsa_only"]["subject"] == "CN=uccx1-EC.cc.example.com"
    assert both["ecdsa_only"]["issuer"] == "CN=Probe Test Root,O=cckit tests"
    assert both["ecdsa_only"]["trusted"] is True and both["rsa_only"]["key_type"] == "RSA"
    assert rsa["ecdsa_only"] == {"key_type": None, "sha256": None, "subject": None,
                                 "issuer": None, "trusted": None, "tls": None,
                                 "status": "handshake_failed"}
    assert rsa["browser"]["key_type"] == "RSA"


def test_rsa_only_server_refuses_ecdsa_only_client(rsa_only):
    # What OpenSSL really does: no fallback to the RSA certificate. TLS 1.2 has no shared
    # cipher suite; TLS 1.3 has "no suitable signature algorithm". Both are alert 40.
    got = _by(P.probe("127.0.0.1", rsa_only, versions=_versions()))
    for v in _versions():
        e, r = got["ecdsa", v], got["rsa", v]
        assert e.status == "handshake_failed", e
        assert "handshake failure" in e.error
        assert e.cert is None and e.reached
        assert r.status == "ok" and r.cert.key_type == "RSA"


def test_closed_port_is_refused():
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    results = P.probe("127.0.0.1", port, versions=_versions())
    assert {r.status for r in results} == {"refused"}
    assert not any(r.reached for r in results)


def test_silent_server_times_out():
    with socket.create_server(("127.0.0.1", 0)) as s:  # listens, never answers
        results = P.probe("127.0.0.1", s.getsockname()[1], timeout=0.5, versions=_versions())
    assert {r.status for r in results} == {"timeout"}


def test_trust_against_ca_bundle(pki, dual):
    good = P.probe("127.0.0.1", dual, cafile=pki["root"], versions=_versions())
    assert all(r.trusted is True for r in good), good
    assert "Probe Test Root" in good[0].trust_reason
    bad = P.probe("127.0.0.1", dual, cafile=pki["other"], versions=("1.2",))
    assert all(r.trusted is False for r in bad)
    assert all("no chain" in r.trust_reason for r in bad)
    # A bundle holding the (self-signed) presented certificate itself: pinned trust.
    pinned = P.probe("127.0.0.1", dual, cafile=pki["files"]["ec"][0], versions=("1.2",))
    assert _by(pinned)["ecdsa", "1.2"].trusted is True
    assert _by(pinned)["rsa", "1.2"].trusted is False


def test_missing_openssl_reports_not_probed(dual):
    got = _by(P.probe("127.0.0.1", dual, openssl="/nonexistent/openssl"))
    assert got["ecdsa", "1.3"].status == "not_probed"
    assert "openssl" in got["ecdsa", "1.3"].error
    assert got["ecdsa", "1.2"].status == "ok"


def test_probe_many_and_dataframe(pki, dual, rsa_only):
    results = P.probe_many([f"127.0.0.1:{dual}", ("127.0.0.1", rsa_only)],
                           cafile=pki["root"], versions=("1.2",), max_workers=2)
    assert [(r.port, r.client) for r in results] == [
        (dual, "browser"), (dual, "ecdsa"), (dual, "rsa"),
        (rsa_only, "browser"), (rsa_only, "ecdsa"), (rsa_only, "rsa")]
    df = display.frame(results)
    assert list(df.columns) == ["host", "port", "client", "tls", "status", "cn", "key",
                                "issuer", "sha256", "trusted", "detail"]
    assert df.loc[1, "cn"] == "uccx1-EC.cc.example.com"
    assert df.loc[3, "cn"] == "uccx1.cc.example.com"  # a browser gets RSA where only RSA is
    assert df.loc[4, "status"] == "handshake_failed"


@pytest.mark.parametrize("bad", ["uccx1", "uccx1:", ":443", "uccx1:0", "uccx1:70000",
                                 "uccx1:https", "a b:443", "::1:443", "http://x:443"])
def test_bad_target_raises(bad):
    with pytest.raises(ProbeError, match=r"HOST:PORT|port|host"):
        P.probe_many([bad])


def test_targets_parse():
    assert P.parse_target("uccx1.example.com:8443") == ("uccx1.example.com", 8443)
    assert P.parse_target("[::1]:443") == ("::1", 443)
    assert P.parse_target(("10.0.0.1", 443)) == ("10.0.0.1", 443)


def test_bad_arguments_raise(tmp_path):
    with pytest.raises(ProbeError):
        P.probe("127.0.0.1", 443, versions=("1.1",))
    with pytest.raises(ProbeError):
        P.probe("127.0.0.1", 443, timeout=0)
    with pytest.raises(CertificateLoadError):
        P.probe("127.0.0.1", 443, cafile=tmp_path / "missing.pem")


def test_main_exit_codes(dual, capsys):
    assert P.main([f"127.0.0.1:{dual}", "--timeout", "3"]) == 0
    out = capsys.readouterr().out
    assert "uccx1-EC.cc.example.com" in out and "ecdsa" in out
    with socket.create_server(("127.0.0.1", 0)) as s:
        closed = s.getsockname()[1]
    assert P.main([f"127.0.0.1:{closed}"]) == 1
    assert "refused" in capsys.readouterr().out
    assert P.main(["nonsense"]) == 2


def test_probe_one_client_kind_only():
    from cckit.errors import ProbeError
    from cckit.probe import probe

    with pytest.raises(ProbeError, match="clients must be among"):
        probe("127.0.0.1", 1, clients=("dsa",))
    results = probe("127.0.0.1", 1, versions=("1.2",), clients=("rsa",), timeout=1)
    assert [(r.client, r.status) for r in results] == [("rsa", "refused")]
