"""The agent-PC trust bundle for the self-signed scenario.

With self-signed certificates nothing changes on the servers, but every agent and
supervisor browser must trust the extra self-signed ``tomcat-ECDSA`` certificate the nodes
show browsers where Live Data and chat and email are served (Cisco 210528: Socket.IO on
12015, SocialMiner's Openfire on 7443; the other web servers show ``tomcat``). This module writes
what a desktop team needs to push that trust: the certificates (PEM and DER), a GPO
startup script for the Windows Trusted Root store, a Firefox enterprise policy, an NSS
``certutil`` script for Linux/Chrome/Firefox profiles, and a README with fingerprints.

Only self-signed certificates belong here: a CA-signed certificate is trusted through its
root CA, which the desktop team should deploy instead.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ._internal.fs import safe_name
from .certs import describe, fingerprint_sha256
from .errors import InputError

__all__ = ["TrustBundle", "build_trust_bundle", "thumbprint_sha1"]

PS1 = "install-trusted-root.ps1"
FIREFOX = "firefox-policies.json"
NSS = "nss-certutil.sh"
README = "README.md"
ALL_PEM = "all.pem"
ROW_COLUMNS = ("node", "cn", "key", "not_after", "shown_on", "sha256", "sha1", "file")

def thumbprint_sha1(cert: x509.Certificate) -> str:
    """The Windows certificate thumbprint: SHA-1 of the DER, upper-case hex, no separators."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Windows' identifier


def _one_line(text: str) -> str:
    """Text safe inside a script comment or a Markdown table cell."""
    return re.sub(r"[\r\n\t]+", " ", text).replace("|", "/").strip()


@dataclass(frozen=True)
class _Entry:
    node: str
    cert: x509.Certificate
    cn: str
    key: str
    not_after: dt.datetime
    sha256: str
    sha1: str
    stem: str
    nickname: str
    #: where agents' browsers are shown it ("uccx-pub 12015 (Live Data), ..."), if known
    shown_on: str = ""

    @property
    def cer(self) -> str:
        return f"{self.stem}.cer"

    @property
    def pem(self) -> str:
        return f"{self.stem}.pem"


@dataclass(frozen=True)
class TrustBundle:
    """What :func:`build_trust_bundle` wrote; ``rows`` is one dict per certificate."""

    out_dir: Path
    site: str
    cer_files: tuple[Path, ...]
    pem_files: tuple[Path, ...]
    all_pem: Path
    powershell: Path
    firefox_policies: Path
    nss_script: Path
    readme: Path
    #: one dict per certificate, keys :data:`ROW_COLUMNS` (``display.frame(bundle.rows)``)
    rows: list[dict[str, object]] = field(default_factory=list)


# --------------------------------------------------------------------------- checks


def _entries(certs: Sequence[tuple[str, x509.Certificate]], site: str,
             shown_on: Mapping[str, str]) -> list[_Entry]:
    if not certs:
        raise InputError("no certificate given for the trust bundle",
                         hint="pass the (node, certificate) pairs the nodes present")
    out: list[_Entry] = []
    seen: dict[str, _Entry] = {}
    stems: set[str] = set()
    for item in certs:
        if (not isinstance(item, tuple) or len(item) != 2
                or not isinstance(item[1], x509.Certificate)):
            raise InputError(f"expected (node name, x509.Certificate) pairs, got {item!r:.80}")
        node, cert = str(item[0]), item[1]
        info = describe(cert)
        if not info.self_signed:
            raise InputError(
                f"certificate {info.subject_cn!r} of node {node!r} is not self-signed "
                f"(issued by {info.issuer_cn or info.issuer!r}): the agent trust bundle is "
                "for self-signed node certificates only",
                node=node,
                hint=(f"a CA-signed certificate is trusted through its root CA: deploy the "
                      f"root {info.issuer_cn or info.issuer!r} to the desktops instead "
                      "(most domain PCs already trust an enterprise CA)"),
            )
        sha256 = fingerprint_sha256(cert)
        if sha256 in seen:  # the same certificate twice (e.g. listed for two roles): once
            continue
        sha1 = thumbprint_sha1(cert)
        stem = safe_name(f"{node}-{info.subject_cn}", limit=80, default="cert")
        if stem.lower() in stems:  # same names, another certificate (renewed?)
            stem = f"{stem}-{sha1[:8].lower()}"
        stems.add(stem.lower())
        entry = _Entry(
            node=node, cert=cert, cn=info.subject_cn,
            key=f"{info.key_type} {info.key_detail}", not_after=info.not_after,
            sha256=sha256, sha1=sha1, stem=stem,
            nickname=safe_name(f"cckit {site} {node} {info.subject_cn} {sha1[:8]}",
                               limit=120),
            shown_on=shown_on.get(sha256, ""),
        )
        seen[sha256] = entry
        out.append(entry)
    return out


# --------------------------------------------------------------------------- renderers


def _powershell(entries: list[_Entry], site: str) -> str:
    items = "\n".join(
        f"    @{{ File = '{e.cer}'; Thumbprint = '{e.sha1}'; Subject = '{_ps_quote(e.cn)}' }}"
        for e in entries
    )
    log_name = safe_name(f"install-trusted-root-{site}") + ".log"
    return f"""\
<#
.SYNOPSIS
  Trust the self-signed UCCX/SocialMiner certificates of site {_ps_comment(site)}
  (LocalMachine Trusted Root Certification Authorities store).
.DESCRIPTION
  Generated by cckit. Meant as a GPO computer startup script (runs as SYSTEM); the .cer
  files must sit next to this script. Idempotent: a certificate whose thumbprint is
  already in the store is skipped. Each file's SHA-1 thumbprint is checked against the
  value embedded below before it is imported. Exit code 0 on success, 1 if any
  certificate could not be verified or imported.
#>
[CmdletBinding()]
param(
    [string]$LogFile = (Join-Path $env:ProgramData 'cckit\\{log_name}')
)
$ErrorActionPreference = 'Stop'

$Certificates = @(
{items}
)

function Write-Log([string]$Message) {{
    $line = '{{0}} {{1}}' -f (Get-Date).ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ'), $Message
    Write-Output $line
    try {{
        $dir = Split-Path -Parent $LogFile
        if ($dir -and -not (Test-Path -LiteralPath $dir)) {{
            New-Item -ItemType Directory -Path $dir -Force | Out-Null
        }}
        Add-Content -LiteralPath $LogFile -Value $line
    }} catch {{ }}
}}

$failed = 0
foreach ($c in $Certificates) {{
    try {{
        $path = Join-Path $PSScriptRoot $c.File
        if (Test-Path -LiteralPath ('Cert:\\LocalMachine\\Root\\' + $c.Thumbprint)) {{
            Write-Log ('present  {{0}} {{1}}' -f $c.Thumbprint, $c.Subject)
            continue
        }}
        if (-not (Test-Path -LiteralPath $path)) {{
            Write-Log ('FAILED   {{0}}: file not found next to the script' -f $c.File)
            $failed++
            continue
        }}
        $x509 = New-Object -ArgumentList $path `
            -TypeName System.Security.Cryptography.X509Certificates.X509Certificate2
        if ($x509.Thumbprint -ne $c.Thumbprint) {{
            $msg = 'FAILED   {{0}}: thumbprint {{1}} is not the expected {{2}}; not imported'
            Write-Log ($msg -f $c.File, $x509.Thumbprint, $c.Thumbprint)
            $failed++
            continue
        }}
        Import-Certificate -FilePath $path -CertStoreLocation 'Cert:\\LocalMachine\\Root' | Out-Null
        Write-Log ('imported {{0}} {{1}} from {{2}}' -f $c.Thumbprint, $c.Subject, $c.File)
    }} catch {{
        Write-Log ('FAILED   {{0}}: {{1}}' -f $c.File, $_.Exception.Message)
        $failed++
    }}
}}
if ($failed -gt 0) {{
    Write-Log ('{{0}} certificate(s) failed' -f $failed)
    exit 1
}}
exit 0
"""


def _ps_comment(text: str) -> str:
    """Text safe inside a PowerShell ``<# ... #>`` block."""
    return _one_line(text).replace("#>", "# >")


def _ps_quote(text: str) -> str:
    """Text safe inside a single-quoted PowerShell string."""
    return _one_line(text).replace("'", "''").replace("\u2018", "''").replace("\u2019", "''")


def _firefox(entries: list[_Entry], firefox_dir: str | None) -> str:
    if firefox_dir:
        sep = "\\" if ("\\" in firefox_dir or re.match(r"^[A-Za-z]:", firefox_dir)) else "/"
        base = firefox_dir.rstrip("\\/")
        install = [f"{base}{sep}{e.cer}" for e in entries]
    else:
        install = [e.cer for e in entries]
    policy = {"policies": {"Certificates": {"ImportEnterpriseRoots": True, "Install": install}}}
    return json.dumps(policy, indent=2) + "\n"


def _nss(entries: list[_Entry], site: str) -> str:
    lines = "\n".join(
        f"    certutil -L -d \"$db\" -n '{e.nickname}' >/dev/null 2>&1 \\\n"
        f"        && echo \"present: {e.nickname} in $db\" \\\n"
        f"        || {{ certutil -A -n '{e.nickname}' -t \"C,,\" -i \"$here/{e.cer}\" -d \"$db\""
        f" && echo \"added:   {e.nickname} to $db\"; }} \\\n"
        f"        || {{ echo \"FAILED:  {e.nickname} to $db\" >&2; status=1; }}"
        for e in entries
    )
    return f"""\
#!/bin/sh
# Trust the self-signed UCCX/SocialMiner certificates of site {_one_line(site)} in NSS
# databases (Chrome/Chromium on Linux: ~/.pki/nssdb; every Firefox profile). Generated by
# cckit. Run as the desktop user, from anywhere; the .cer files must sit next to this
# script. Idempotent: a nickname already present is skipped. Needs certutil (Debian/Ubuntu:
# libnss3-tools, RHEL/Fedora: nss-tools).
set -u
command -v certutil >/dev/null 2>&1 || {{
    echo "certutil not found: install libnss3-tools (Debian/Ubuntu) or nss-tools (RHEL)" >&2
    exit 2
}}
here=$(cd "$(dirname "$0")" && pwd)
status=0

install_into() {{
    db=$1
{lines}
}}

# Chrome/Chromium (and other NSS users) on Linux.
if [ ! -f "$HOME/.pki/nssdb/cert9.db" ]; then
    mkdir -p "$HOME/.pki/nssdb" && certutil -N -d "sql:$HOME/.pki/nssdb" --empty-password
fi
install_into "sql:$HOME/.pki/nssdb"

# Every Firefox profile that has a certificate database (classic and snap installs).
for profile in "$HOME"/.mozilla/firefox/*/ "$HOME"/snap/firefox/common/.mozilla/firefox/*/; do
    [ -f "${{profile}}cert9.db" ] || continue
    install_into "sql:${{profile%/}}"
done
exit $status
"""


_HEADER = ("| Node | Certificate CN | Key | Expires | Shown to browsers on | SHA-256 "
           "| SHA-1 thumbprint (Windows) | File |\n|---|---|---|---|---|---|---|---|")


def _readme(entries: list[_Entry], site: str, firefox_dir: str | None) -> str:
    table = "\n".join(
        f"| {_one_line(e.node)} | {_one_line(e.cn)} | {e.key} | {e.not_after:%Y-%m-%d} "
        f"| {_one_line(e.shown_on) or '-'} | `{e.sha256}` | `{e.sha1}` | `{e.cer}` |"
        for e in entries
    )
    ports = "; ".join(_one_line(e.shown_on) for e in entries if e.shown_on)
    where = (f"Agents' browsers are shown them on these ports: {ports}." if ports else
             "The table says where each one is shown.")
    ff_where = (
        f"The policy lists full paths under `{firefox_dir}`: copy the `.cer` files there."
        if firefox_dir else
        "The policy lists bare file names, so Firefox looks for the files in "
        "`%USERPROFILE%\\AppData\\Local\\Mozilla\\Certificates` or "
        "`%USERPROFILE%\\AppData\\Roaming\\Mozilla\\Certificates` (Windows), "
        "`/Library/Application Support/Mozilla/Certificates` (macOS), "
        "`/usr/lib/mozilla/certificates` or `~/.mozilla/certificates` (Linux). "
        "Copy the `.cer` files there, or rebuild the bundle with a full/UNC path "
        "(environment variables such as `%USERPROFILE%` are not supported in the policy)."
    )
    removes = "\n".join(
        f"    Remove-Item -LiteralPath 'Cert:\\LocalMachine\\Root\\{e.sha1}'" for e in entries
    )
    nss_removes = "\n".join(
        f"    certutil -D -d sql:$HOME/.pki/nssdb -n '{e.nickname}'" for e in entries
    )
    return f"""\
# Trust bundle for site {_one_line(site)}: self-signed UCCX/SocialMiner certificates

Generated by cckit. The servers of this site use **self-signed** certificates. A browser
offers both RSA and ECDSA, and each web server chooses (Cisco 210528): Live Data (Socket.IO,
12015) and SocialMiner chat and email (7443) show it the self-signed `tomcat-ECDSA`, the other
web pages the RSA `tomcat`. {where} Every agent and supervisor PC must trust the certificates
below, or those gadgets fail with certificate errors. Nothing here contains a private key.

{_HEADER}
{table}

Compare these fingerprints with what the servers show a browser (`cckit probe host:12015`,
the `browser` row) or what the OS Administration page shows before deploying anything.

## Files

- `*.cer`: each certificate, DER (double-click on Windows to inspect); `*.pem`: the same in PEM.
- `{ALL_PEM}`: every certificate in one PEM file.
- `{PS1}`: Windows, imports the `.cer` files into *Local Computer > Trusted Root
  Certification Authorities*; checks each thumbprint first; skips those already present;
  logs to `%ProgramData%\\cckit\\`; exit code 1 on any failure.
- `{FIREFOX}`: Firefox enterprise policy (`Certificates` → `ImportEnterpriseRoots`, `Install`).
- `{NSS}`: Linux, adds the certificates to `~/.pki/nssdb` (Chrome) and every Firefox profile.

## Windows (GPO)

1. Copy this folder (the `.ps1` and the `.cer` files together) to the GPO's scripts share,
   e.g. `\\\\<domain>\\SYSVOL\\<domain>\\Policies\\{{GPO-GUID}}\\Machine\\Scripts\\Startup`.
2. *Computer Configuration > Policies > Windows Settings > Scripts > Startup >
   PowerShell Scripts*: add `{PS1}`.
3. Link the GPO to the agents' and supervisors' computer OU; the script runs at the next
   restart (or `gpupdate /force` then restart).

Alternatively import the `.cer` files with *Computer Configuration > Policies > Windows
Settings > Security Settings > Public Key Policies > Trusted Root Certification Authorities*.
By hand on one PC (elevated PowerShell): `powershell -ExecutionPolicy Bypass -File .\\{PS1}`.

Edge and Chrome on Windows use this store. Firefox does too when `ImportEnterpriseRoots`
is on (see below).

## Firefox

Place `{FIREFOX}` as `policies.json` in the `distribution` folder of the Firefox
installation (e.g. `C:\\Program Files\\Mozilla Firefox\\distribution\\policies.json`;
Linux: `/etc/firefox/policies/policies.json`; macOS:
`Firefox.app/Contents/Resources/distribution/policies.json`), or set the same values with
the Firefox ADMX templates. Merge it by hand if a `policies.json` already exists.
`ImportEnterpriseRoots` makes Firefox trust the Windows/macOS store filled by the GPO;
`Install` adds the certificates to Firefox's own store. {ff_where}
Check in `about:policies`.

## Linux (NSS: Chrome/Chromium, Firefox)

Run `sh {NSS}` as each desktop user (e.g. from a login script); it is safe to run again.

## Verify

- Windows: `Get-ChildItem Cert:\\LocalMachine\\Root | Where-Object Thumbprint -in @(...)`,
  or `certutil -store Root <thumbprint>`; the log in `%ProgramData%\\cckit\\`.
- Any browser: open each port the table names, e.g. `https://<node>:12015/` (no warning),
  view the certificate and compare its SHA-256 fingerprint with the table above.
- Linux: `certutil -L -d sql:$HOME/.pki/nssdb`.

## Remove (rollback)

Windows (elevated PowerShell, or a GPO shutdown/startup script):

{removes}

Linux/NSS:

{nss_removes}

Firefox: remove the `Certificates` entries from `policies.json`; certificates installed
by the policy are removed from the Firefox store when it next starts without them.
"""


# --------------------------------------------------------------------------- the bundle


def build_trust_bundle(
    certs: Sequence[tuple[str, x509.Certificate]],
    out_dir: Path,
    *,
    site: str,
    firefox_dir: str | None = None,
    shown_on: Mapping[str, str] | None = None,
) -> TrustBundle:
    """Write the agent-PC trust bundle for ``certs`` ((node name, certificate) pairs).

    Raises :class:`~cckit.errors.InputError` for a certificate that is not self-signed
    (trust its root CA instead). The same certificate given twice is written once.
    ``firefox_dir`` (a full or UNC path where the desktops find the ``.cer`` files) makes
    the Firefox policy list full paths instead of bare file names. ``shown_on`` (sha256 ->
    the ports agents' browsers are shown it on) goes into the README and the rows.
    """
    entries = _entries(certs, site, shown_on or {})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    root = out_dir.resolve()

    def write(name: str, data: bytes) -> Path:
        path = (out_dir / name)
        if path.resolve().parent != root:  # defence in depth: names are already sanitised
            raise InputError(f"refusing to write outside {out_dir}: {name!r}")
        path.write_bytes(data)
        return path

    cer_files, pem_files, rows = [], [], []
    for e in entries:
        cer_files.append(write(e.cer, e.cert.public_bytes(serialization.Encoding.DER)))
        pem_files.append(write(e.pem, e.cert.public_bytes(serialization.Encoding.PEM)))
        rows.append({"node": e.node, "cn": e.cn, "key": e.key, "not_after": e.not_after,
                     "shown_on": e.shown_on, "sha256": e.sha256, "sha1": e.sha1,
                     "file": e.cer})
    all_pem = write(ALL_PEM, b"".join(
        e.cert.public_bytes(serialization.Encoding.PEM) for e in entries))
    ps1 = write(PS1, _powershell(entries, site).replace("\n", "\r\n").encode("utf-8-sig"))
    firefox = write(FIREFOX, _firefox(entries, firefox_dir).encode())
    nss = write(NSS, _nss(entries, site).encode())
    nss.chmod(0o755)
    readme = write(README, _readme(entries, site, firefox_dir).encode())
    return TrustBundle(
        out_dir=out_dir, site=site, cer_files=tuple(cer_files), pem_files=tuple(pem_files),
        all_pem=all_pem, powershell=ps1, firefox_policies=firefox, nss_script=nss,
        readme=readme, rows=rows,
    )
