"""The autopilot's ledger (backoff, one alert per streak), what is due from the inventory's
records, and the expected run time."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from cckit.autopilot import ledger as L
from cckit.autopilot.due import Held, find_due
from cckit.autopilot.estimate import MARGIN, expected_duration, prior_seconds
from cckit.fleet.records import CertRow, NodeRow, SiteInventory
from cckit.scenarios import CA_SIGNED, RENEW_TOMCAT
from cckit.sites import parse_site

T0 = dt.datetime(2026, 6, 6, 6, 0, tzinfo=dt.UTC)
OLD = Held("uccx-pub", "tomcat-ECDSA", "0a", "AA:BB", T0 + dt.timedelta(days=20), 20)


def _attempt(led: L.Ledger, outcome: str, ended: dt.datetime, key: str = "k",
             nodes=("uccx-pub",)) -> str:
    attempt = f"a{len(led.all()) + 1}"
    led.begin(attempt=attempt, site="east", site_key=key, site_file="/s/east.yaml",
              scenario="ca_signed", unit="tomcat-ECDSA", old=[OLD], nodes=nodes,
              run=f"/state/runs/east/{attempt}", started=ended - dt.timedelta(minutes=10),
              parameters={"nodes": list(nodes)})
    led.end(attempt, outcome=outcome, ended=ended, message=f"{outcome} here",
            new={"uccx-pub": dataclasses.replace(OLD, serial="0b", sha256="CC:DD")}
            if outcome == "renewed" else None)
    return attempt


def test_rows_per_node_and_the_columns(tmp_path):
    assert L._SELECT.split("SELECT ")[1].split(" FROM")[0].split(", ") == [
        f.name for f in dataclasses.fields(L.Attempt)]
    led = L.Ledger(tmp_path / "ledger.sqlite")
    a = _attempt(led, "renewed", T0, nodes=("uccx-pub", "uccx-sub"))
    rows = led.all()
    assert [(r.attempt, r.node, r.outcome) for r in rows] == [
        (a, "uccx-pub", "renewed"), (a, "uccx-sub", "renewed")]
    pub, sub = rows
    assert (pub.old_serial, pub.new_serial, pub.new_sha256) == ("0a", "0b", "CC:DD")
    assert sub.old_serial is None and sub.new_serial is None
    assert pub.as_json()["parameters"] == {"nodes": ["uccx-pub", "uccx-sub"]}
    assert led.durations("k", "ca_signed") == [600.0]
    led.close()
    ro = L.Ledger(tmp_path / "ledger.sqlite", read_only=True)  # --status, --dry-run
    assert len(ro.all()) == 2
    with pytest.raises(Exception, match="readonly"):
        _attempt(ro, "failed", T0)


def test_backoff_doubles_to_a_cap_and_a_renewal_ends_it(tmp_path):
    led = L.Ledger(tmp_path / "ledger.sqlite")
    assert L.backoff_until(led, "k") is None
    waits = []
    end = T0
    for _ in range(7):
        _attempt(led, "failed", end)
        until = L.backoff_until(led, "k")
        waits.append((until - end) / dt.timedelta(hours=1))
        end = until + dt.timedelta(minutes=5)
    assert waits == [1, 2, 4, 8, 16, 24, 24]
    # neither a skipped (locked) attempt nor an interruption resets or counts
    before = L.backoff_until(led, "k")
    _attempt(led, "locked", end)
    _attempt(led, "interrupted", end)
    assert L.backoff_until(led, "k") == before
    assert before - led.streak("k")[-2][0].ended_at == dt.timedelta(hours=24)
    _attempt(led, "refused", end + dt.timedelta(hours=30))
    assert L.backoff_until(led, "k") == end + dt.timedelta(hours=54)
    _attempt(led, "renewed", end + dt.timedelta(hours=60))
    assert L.backoff_until(led, "k") is None and led.streak("k") == []
    assert L.backoff_until(led, "other-site") is None


def test_one_alert_per_streak(tmp_path):
    led = L.Ledger(tmp_path / "ledger.sqlite")
    first = _attempt(led, "failed", T0)
    assert not any(r.alerted for a in led.streak("k") for r in a)
    led.mark_alerted(first)
    _attempt(led, "refused", T0 + dt.timedelta(hours=2))
    assert any(r.alerted for a in led.streak("k") for r in a)  # the streak was told once
    _attempt(led, "renewed", T0 + dt.timedelta(hours=5))
    _attempt(led, "interrupted", T0 + dt.timedelta(hours=9))
    assert not any(r.alerted for a in led.streak("k") for r in a)  # a new streak


def test_the_attempt_of_a_run_passes_over_locked_ones(tmp_path):
    led = L.Ledger(tmp_path / "ledger.sqlite")
    failed = _attempt(led, "failed", T0)
    run = led.all()[-1].run
    _attempt(led, "locked", T0 + dt.timedelta(hours=1))
    assert led.all()[-1].run is None  # a skipped new attempt made no run folder
    # an attempt to resume the failed run, skipped: it keeps naming the run it would resume
    led.begin(attempt="again", site="east", site_key="k", site_file="/s/east.yaml",
              scenario="ca_signed", unit="tomcat-ECDSA", old=[OLD], run=run,
              started=T0 + dt.timedelta(hours=2), parameters={}, resumes=failed)
    led.end("again", outcome="locked", ended=T0 + dt.timedelta(hours=2))
    assert led.all()[-1].run == run
    assert [r.attempt for r in led.of_run(run)] == [failed]
    assert led.of_run("/state/runs/east/elsewhere") is None


# ------------------------------------------------------------------------------ what is due

SITE = {
    "site": "east", "domain": "cc.example.com",
    "credentials": {"os-admin": {"username": "a", "password": {"env": "X"}}},
    "nodes": [{"name": "uccx-pub", "role": "uccx-publisher", "host": "uccx1"},
              {"name": "uccx-sub", "role": "uccx-subscriber", "host": "uccx2"},
              {"name": "sm", "role": "socialminer", "host": "sm"}],
}


def cert(node, unit, days, *, self_signed=False, key="EC", signed="EC", bits=384, sans=()):
    return CertRow("east", node, "role", "own", unit, f"{unit}/{unit}.pem", "cn", sans, "CA",
                   f"{node}{unit}{days}", key, "detail", bits, "sig", signed,
                   T0 - dt.timedelta(days=300), T0 + dt.timedelta(days=days), days, True,
                   True, self_signed, False, "complete", f"SHA-{node}-{unit}")


def inv(certs, version="11.5.1.10000-61", cop=""):
    from cckit import topology

    nodes = [NodeRow("east", n["name"], n["role"], n["host"], version,
                     topology.ecdsa_in_use(n["role"], version), (), cop, (), 2)
             for n in SITE["nodes"]]
    return SiteInventory("east", "east.yaml", 1.0, tuple(nodes), tuple(certs))


def test_a_ca_signed_tomcat_ecdsa_on_11_5_is_renewed_by_ca_signed_on_its_node_only():
    site = parse_site(SITE)
    jobs, notes = find_due(site, inv([
        cert("uccx-pub", "tomcat-ECDSA", 20),
        cert("uccx-sub", "tomcat-ECDSA", 200),  # CA-signed, not due
        cert("sm", "tomcat-ECDSA", 10, self_signed=True),  # a self-signed site stays so
        cert("uccx-pub", "tomcat", 400, key="RSA", signed="RSA", bits=2048),
    ]), 30)
    [job] = jobs
    assert (job.scenario, job.unit, job.nodes) == (CA_SIGNED, "tomcat-ECDSA", ("uccx-pub",))
    assert job.parameters() == {"nodes": ["uccx-pub"], "renew": True, "key_size": 384,
                                "hash_algorithm": "SHA384"}
    assert job.old[0].serial == "uccx-pubtomcat-ECDSA20" and notes == []


def test_never_another_scenario():
    site = parse_site(SITE)
    jobs, notes = find_due(site, inv([
        cert("uccx-pub", "tomcat-ECDSA", 5, signed="RSA"),  # RSA-signed: rsa_only's job
        cert("uccx-sub", "tomcat", 5, key="RSA", signed="RSA", bits=2048),  # RSA on 11.5
        cert("sm", "tomcat-ECDSA", -3, self_signed=True),  # expired self-signed
    ]), 30)
    assert jobs == []
    assert [(n.node, n.unit) for n in notes] == [("uccx-pub", "tomcat-ECDSA"),
                                                 ("uccx-sub", "tomcat")]
    assert "another scenario" in notes[0].text and "renew_tomcat runbook" in notes[1].text
    jobs, notes = find_due(site, inv([cert("sm", "tomcat-ECDSA", 5)], cop="disable"), 30)
    assert jobs == [] and "disable COP" in notes[0].text


def test_the_rsa_tomcat_on_12_5_and_a_multi_san_certificate_kept_as_one():
    site = parse_site(SITE)
    v = "12.5.1.10000-30"
    jobs, _ = find_due(site, inv([cert("sm", "tomcat", 12, key="RSA", signed="RSA",
                                       bits=2048)], v), 30)
    [job] = jobs
    assert (job.scenario, job.nodes, job.multi_san) == (RENEW_TOMCAT, ("sm",), False)
    assert job.parameters()["multi_san"] is False and job.key_size == 2048
    multi = ("DNS:uccx1.cc.example.com", "DNS:uccx2.cc.example.com")
    jobs, _ = find_due(site, inv([
        cert("uccx-pub", "tomcat", 12, key="RSA", signed="RSA", bits=3072, sans=multi),
        cert("uccx-sub", "tomcat", 12, key="RSA", signed="RSA", bits=3072, sans=multi)], v), 30)
    [job] = jobs
    assert (job.nodes, job.multi_san, job.key_size) == (("uccx-pub", "uccx-sub"), True, 3072)
    # only the publisher seen as due (the subscriber not read): still the whole cluster
    jobs, _ = find_due(site, inv([
        cert("uccx-pub", "tomcat", 12, key="RSA", signed="RSA", sans=multi),
        cert("uccx-sub", "tomcat", 90, key="RSA", signed="RSA", sans=multi)], v), 30)
    assert jobs[0].nodes == ("uccx-pub", "uccx-sub") and jobs[0].multi_san


def test_expected_run_time_prior_and_history():
    site = parse_site(SITE)
    one = prior_seconds(site, ["uccx-pub"], "tomcat-ECDSA")
    three = prior_seconds(site, ["uccx-pub", "uccx-sub", "sm"], "tomcat-ECDSA")
    assert 600 < one < three < 3600  # two restart waves take longer than one
    assert expected_duration(site, ["uccx-pub"], "tomcat-ECDSA") >= dt.timedelta(
        seconds=one * MARGIN)
    # with history: the longest of the last five renewals, with the margin
    hist = [9000, 600, 900, 1200, 800, 700]
    assert expected_duration(site, ["uccx-pub"], "tomcat-ECDSA", hist) == dt.timedelta(
        minutes=30)
    json.dumps(expected_duration(site, ["sm"], "tomcat").total_seconds())


def test_expected_run_time_counts_the_runbooks_waits(monkeypatch):
    """The waits the runbook makes (issue 22) are in the prior: trust replicating to a
    renewed subscriber, and Finesse in service after a UCCX node's restart."""
    from cckit.autopilot import estimate
    from cckit.vosmock.latency import PROFILE

    site = parse_site(SITE)
    pub, sub = (prior_seconds(site, [n], "tomcat-ECDSA") for n in ("uccx-pub", "uccx-sub"))
    # the same services restarted, in a wave of its own; only the subscriber's trust replicates
    assert sub - pub == PROFILE["trust_replication"]
    sm = prior_seconds(site, ["sm"], "tomcat-ECDSA")
    monkeypatch.setattr(estimate, "_profile", lambda: {**PROFILE, "finesse_ready": 0.0})
    assert pub - prior_seconds(site, ["uccx-pub"], "tomcat-ECDSA") == PROFILE["finesse_ready"]
    assert prior_seconds(site, ["sm"], "tomcat-ECDSA") == sm  # no Finesse on SocialMiner
