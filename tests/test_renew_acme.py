"""renew_tomcat end to end with the ACME adapter against pebble (a real ACME server, DNS-01
through pebble-challtestsrv) on a mock UCCX 12.5 site, single and multi-server SAN; then
Chromium trusting only pebble's root loads every web port of every node."""

from __future__ import annotations

import pytest

from cckit import certs
from cckit.ca import get_adapter
from cckit.procedures import SiteSession
from cckit.procedures.renew_tomcat import RenewTomcat
from cckit.sites import load_site
from cckit.vosmock.testing import running_site
from tests import pebble as pb
from tests.chromium import needs_chromium, nssdb
from tests.test_procedures import presented
from tests.test_renew_tomcat import VERSION, _chromium_loads

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow,
              pytest.mark.skipif(not pb.installed(), reason="pebble/pebble-challtestsrv not "
                                 "installed (apt-get install pebble; .ci/run does)")]


@pytest.fixture(scope="module")
def pebble(tmp_path_factory):
    with pb.running_pebble(tmp_path_factory.mktemp("pebble")) as p:
        yield p


@needs_chromium
@pytest.mark.parametrize("multi_san", [False, True])
def test_renew_tomcat_with_acme_via_pebble(pebble, tmp_path, multi_san):
    with running_site(tmp_path / "mock", version=VERSION, restart_seconds=0.2) as mock, \
            SiteSession(load_site(mock.site_file), workdir=tmp_path / "run",
                        tls_timeout=3) as session:
        ca = get_adapter("acme", directory=pebble.directory, state_dir=tmp_path / "acme",
                         dns="challtestsrv", dns_options={"url": pebble.challtestsrv},
                         agree_tos=True, ca_bundle=pebble.ca_bundle, roots=pebble.root_file,
                         issuer_url=f"{pebble.management}/intermediates/0")
        # pebble signs with RSA: the tomcat-ECDSA advisor refuses it, renew_tomcat proceeds
        assert not ca.signing_key().signs_ec
        proc = RenewTomcat(session, ca, multi_san=multi_san)
        results = proc.run_all()
        assert results[-1].ok, results
        if multi_san:
            assert proc.signed["uccx-pub"].certificate == proc.signed["uccx-sub"].certificate
        for (node, _port), r in presented(session, "rsa").items():
            assert r.cert.sha256 == certs.fingerprint_sha256(proc.signed[node].certificate)
            assert r.cert.key_type == "RSA" and not r.cert.self_signed
        urls = [f"https://{n.fqdn}:{wp.connect}/" for n in session.nodes for wp in n.web_ports]
        hosts = sorted({n.fqdn for n in session.nodes})
        nssdb(tmp_path / "home-empty")
        assert all("ERR_CERT_AUTHORITY_INVALID" in v
                   for v in _chromium_loads(tmp_path / "home-empty", urls, hosts).values())
        nssdb(tmp_path / "home", pebble.root_file)  # pebble's root only
        assert _chromium_loads(tmp_path / "home", urls, hosts) == {u: "ok" for u in urls}
