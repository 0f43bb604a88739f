"""cckit.clienttrust: the agent-PC trust bundle for self-signed certificates."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from cckit import display
from cckit._internal.fs import safe_name
from cckit.clienttrust import ROW_COLUMNS, build_trust_bundle, thumbprint_sha1
from cckit.errors import InputError

from .certfactory import make_csr, make_root, rsa_key, sign_csr


@pytest.fixture(scope="module")
def node_certs():
    ec1 = make_root("uccx1-EC.cc.example.com", ca=False).cert
    ec2 = make_root("uccx2-EC.cc.example.com", ca=False).cert
    rsa1 = make_root("uccx1.cc.example.com", key=rsa_key(), ca=False).cert
    sm = make_root("sm1-EC.cc.example.com", ca=False).cert
    return [("uccx1", ec1), ("uccx2", ec2), ("uccx1", rsa1), ("socialminer", sm)]


def test_bundle_files(tmp_path, node_certs):
    b = build_trust_bundle(node_certs, tmp_path / "bundle", site="Lab Site")
    names = sorted(p.name for p in b.cer_files)
    assert names == ["socialminer-sm1-EC.cc.example.com.cer", "uccx1-uccx1-EC.cc.example.com.cer",
                     "uccx1-uccx1.cc.example.com.cer", "uccx2-uccx2-EC.cc.example.com.cer"]
    # DER files parse and match; PEM files and all.pem hold the same certificates.
    for (_, cert), cer, pem in zip(node_certs, b.cer_files, b.pem_files, strict=True):
        assert x509.load_der_x509_certificate(cer.read_bytes()) == cert
        assert x509.load_pem_x509_certificate(pem.read_bytes()) == cert
    assert x509.load_pem_x509_certificates(b.all_pem.read_bytes()) == [c for _, c in node_certs]

    thumbs = [c.fingerprint(hashes.SHA1()).hex().upper() for _, c in node_certs]  # noqa: S303
    assert [thumbprint_sha1(c) for _, c in node_certs] == thumbs

    ps1 = b.powershell.read_text(encoding="utf-8-sig")
    for t, cer in zip(thumbs, b.cer_files, strict=True):
        assert f"File = '{cer.name}'; Thumbprint = '{t}'" in ps1
    assert ("Import-Certificate -FilePath $path "
            "-CertStoreLocation 'Cert:\\LocalMachine\\Root'") in ps1
    assert "Test-Path -LiteralPath ('Cert:\\LocalMachine\\Root\\' + $c.Thumbprint)" in ps1
    assert "$x509.Thumbprint -ne $c.Thumbprint" in ps1
    assert "exit 1" in ps1 and "$PSScriptRoot" in ps1
    _balanced(ps1)

    policy = json.loads(b.firefox_policies.read_text())
    certs_policy = policy["policies"]["Certificates"]
    assert certs_policy["ImportEnterpriseRoots"] is True
    assert certs_policy["Install"] == [p.name for p in b.cer_files]

    nss = b.nss_script.read_text()
    assert nss.count('-t "C,,"') == len(node_certs)
    assert 'sql:$HOME/.pki/nssdb' in nss and ".mozilla/firefox/*/" in nss
    assert os.access(b.nss_script, os.X_OK)

    readme = b.readme.read_text()
    for (_, c), t in zip(node_certs, thumbs, strict=True):
        assert c.fingerprint(hashes.SHA256()).hex(":").upper() in readme
        assert t in readme
    assert "GPO" in readme and "policies.json" in readme and "Remove" in readme

    df = display.frame(b.rows, list(ROW_COLUMNS))
    assert list(df.columns) == ["node", "cn", "key", "not_after", "shown_on", "sha256", "sha1",
                                "file"]
    assert len(df) == 4 and set(df["sha1"]) == set(thumbs)


def _balanced(text: str) -> None:
    """Parse-check by text (no pwsh here): braces/parens balance outside strings."""
    stripped = re.sub(r"<#.*?#>", "", text, flags=re.S)
    stripped = re.sub(r"'(?:[^']|'')*'", "''", stripped)
    stripped = re.sub(r"#.*", "", stripped)
    for o, c in ("{}", "()", "[]"):
        assert stripped.count(o) == stripped.count(c), (o, c)


def test_powershell_with_pwsh_if_available(tmp_path, node_certs):
    pwsh = shutil.which("pwsh")
    if pwsh is None:
        pytest.skip("pwsh not installed: checked by text only")
    b = build_trust_bundle(node_certs[:1], tmp_path, site="lab")
    cmd = ("$e=$null; [System.Management.Automation.Language.Parser]::ParseFile("
           f"'{b.powershell}', [ref]$null, [ref]$e) | Out-Null; exit $e.Count")
    assert subprocess.run([pwsh, "-NoProfile", "-Command", cmd], check=False).returncode == 0


def test_nss_script_is_valid_sh_and_idempotent(tmp_path, node_certs):
    b = build_trust_bundle(node_certs, tmp_path / "b", site="lab")
    assert subprocess.run(["sh", "-n", str(b.nss_script)], check=False).returncode == 0
    # A fake certutil that keeps nicknames in a file shows the script adds each once.
    bindir, home = tmp_path / "bin", tmp_path / "home"
    bindir.mkdir()
    (home / ".mozilla/firefox/abc.default").mkdir(parents=True)
    (home / ".mozilla/firefox/abc.default/cert9.db").write_text("")
    (bindir / "certutil").write_text(
        "#!/bin/sh\n"
        'echo "$*" >> "$HOME/calls"\n'
        'db=""; nick=""; op=""\n'
        'while [ $# -gt 0 ]; do case "$1" in -d) db=$2; shift;; -n) nick=$2; shift;;'
        ' -A|-L|-N) op=$1;; esac; shift; done\n'
        'case $op in\n'
        '  -N) mkdir -p "${db#sql:}"; : > "${db#sql:}/cert9.db";;\n'
        '  -L) grep -qxF "$db|$nick" "$HOME/store" 2>/dev/null;;\n'
        '  -A) echo "$db|$nick" >> "$HOME/store";;\n'
        'esac\n'
    )
    (bindir / "certutil").chmod(0o755)
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(home)}
    for _ in range(2):
        r = subprocess.run(["sh", str(b.nss_script)], env=env, capture_output=True,
                           text=True, check=False, timeout=20)
        assert r.returncode == 0, r.stderr
    store = (home / "store").read_text().splitlines()
    assert len(store) == 2 * len(node_certs) == len(set(store))  # 2 databases, once each
    assert "present:" in r.stdout and "added:" not in r.stdout


def test_duplicates_written_once(tmp_path, node_certs):
    ec1 = node_certs[0][1]
    b = build_trust_bundle([("uccx1", ec1), ("uccx1-again", ec1), ("uccx2", node_certs[1][1])],
                           tmp_path, site="lab")
    assert len(b.cer_files) == 2 and len(b.rows) == 2
    assert b.rows[0]["node"] == "uccx1"
    assert json.loads(b.firefox_policies.read_text())["policies"]["Certificates"][
        "Install"] == [p.name for p in b.cer_files]


def test_same_names_different_certificates_get_distinct_files(tmp_path):
    a = make_root("uccx1-EC.cc.example.com", ca=False).cert
    b_ = make_root("uccx1-EC.cc.example.com", ca=False).cert  # renewed: same CN, new key
    b = build_trust_bundle([("uccx1", a), ("uccx1", b_)], tmp_path, site="lab")
    assert len({p.name for p in b.cer_files}) == 2


def test_ca_signed_certificate_refused(tmp_path):
    root = make_root("Corp Root CA")
    _, csr = make_csr()
    leaf = sign_csr(root, csr)
    with pytest.raises(InputError) as ei:
        build_trust_bundle([("uccx1", leaf)], tmp_path / "out", site="lab")
    text = str(ei.value)
    assert "not self-signed" in text and "Corp Root CA" in text and "root" in ei.value.hint
    assert not (tmp_path / "out").exists()  # nothing written


def test_empty_and_bad_input_refused(tmp_path):
    with pytest.raises(InputError):
        build_trust_bundle([], tmp_path, site="lab")
    with pytest.raises(InputError):
        build_trust_bundle([("uccx1", b"not a cert")], tmp_path, site="lab")  # type: ignore[list-item]


def test_hostile_names_stay_inside_out_dir(tmp_path):
    evil = make_root("../../x", ca=False).cert
    evil2 = make_root("..\\..\\win\\x'; rm -rf / #", ca=False).cert
    out = tmp_path / "deep" / "bundle"
    b = build_trust_bundle([("../../etc/passwd", evil), ("/abs\n$(reboot)`x`", evil2)],
                           out, site="lab\n; rm -rf /")
    for p in (*b.cer_files, *b.pem_files):
        assert p.parent == out and p.resolve().parent == out.resolve()
        assert "/" not in p.name and "\\" not in p.name and not p.name.startswith(".")
        assert ".." not in p.name
    assert sorted(q.name for q in tmp_path.rglob("*") if q.is_file() and q.parent != out) == []
    nss = b.nss_script.read_text()
    assert "$(reboot)" not in nss and "`" not in nss
    assert subprocess.run(["sh", "-n", str(b.nss_script)], check=False).returncode == 0
    ps1 = b.powershell.read_text(encoding="utf-8-sig")
    assert "x''; rm -rf / #" in ps1  # quote doubled inside the single-quoted string
    assert "\n; rm -rf /" not in b.readme.read_text()


@pytest.mark.parametrize(("raw", "safe"), [("../../x", "x-"), ("a b/c", "a_b_c-"), ("...", "cert-"),
                                          ("uccx1-EC.cc.example.com", "uccx1-EC.cc.example.com")])
def test_safe_name(raw, safe):
    # plain names are kept; others are cleaned and get a hash of the original (no collisions)
    got = safe_name(raw, default="cert")
    assert got == safe if not safe.endswith("-") else got.startswith(safe) and len(got) == \
        len(safe) + 10


def test_firefox_full_paths(tmp_path, node_certs):
    b = build_trust_bundle(node_certs[:2], tmp_path, site="lab", firefox_dir="\\\\fs1\\certs\\")
    install = json.loads(b.firefox_policies.read_text())["policies"]["Certificates"]["Install"]
    assert install == [f"\\\\fs1\\certs\\{p.name}" for p in b.cer_files]
    assert Path(install[0].replace("\\", "/")).name == b.cer_files[0].name
