"""The renewal autopilot with the ACME adapter on pebble (a real ACME server, DNS-01 through
pebble-challtestsrv): a UCCX 12.5 site whose publisher's RSA tomcat expires in 20 days is
renewed by renew_tomcat in one pass.

Not ca_signed: Debian's pebble (2.4.0) issues only from RSA-2048 keys (its ca.makeKey; neither
its config file nor a PEBBLE_* variable chooses another key type), and a tomcat-ECDSA signed
with RSA is not presented, so the gate refuses it (tests/test_autopilot.py proves that refusal
with the lab CA's RSA mode).
"""

from __future__ import annotations

import pytest
import yaml

from cckit.autopilot.renew import read_status, run_pass
from tests import pebble as pb
from tests.test_autopilot import presented
from tests.test_renew_tomcat import VERSION

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow,
              pytest.mark.skipif(not pb.installed(), reason="pebble/pebble-challtestsrv not "
                                 "installed (apt-get install pebble; .ci/run does)")]


def test_autopilot_renews_the_rsa_tomcat_on_12_5_through_acme(tmp_path):
    from cckit.vosmock.testing import running_site

    with pb.running_pebble(tmp_path / "pebble") as pebble, \
            running_site(tmp_path / "mock", version=VERSION, seed="expiring-tomcat",
                         restart_seconds=0.2) as site:
        data = yaml.safe_load(site.site_file.read_text())
        data["autopilot"] = {
            "enabled": True, "ca": "acme", "renew_before": "30d",
            "windows": [{"start": "00:00", "end": "24:00", "tz": "Europe/Paris"}],
            "ca_options": {"directory": pebble.directory, "dns": "challtestsrv",
                           "dns_options": {"url": pebble.challtestsrv}, "agree_tos": True,
                           "ca_bundle": str(pebble.ca_bundle), "roots": str(pebble.root_file),
                           "issuer_url": f"{pebble.management}/intermediates/0"}}
        site.site_file.write_text(yaml.safe_dump(data))
        old = presented(site, "uccx-pub", "rsa")
        state = tmp_path / "state"
        result = run_pass([site.site_file], state)
        [view] = result.sites
        assert view.state == "renewed", view.message
        [row] = read_status(state)["attempts"]
        assert (row["scenario"], row["node"], row["unit"], row["outcome"]) == (
            "renew_tomcat", "uccx-pub", "tomcat", "renewed")
        assert row["old_sha256"] in old and row["parameters"]["multi_san"] is False
        assert presented(site, "uccx-pub", "rsa") == {row["new_sha256"]}
        # the account and orders live with the site's CA state, across attempts
        assert (state / "ca" / "vosmock" / "acme").is_dir()
        # the other nodes (self-signed tomcat) were left as they were: one node renewed
        again = run_pass([site.site_file], state)
        assert again.sites[0].state == "nothing-due" and len(
            read_status(state)["attempts"]) == 1
