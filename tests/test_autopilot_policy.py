"""The site file's autopilot: block: validated with the rest, one line per problem naming
its field; only a CA that signs unattended; secrets by reference only."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cckit.autopilot import renew
from cckit.errors import SiteFileError
from cckit.sites import load_site

BASE = {
    "site": "east",
    "credentials": {"os-admin": {"username": "admin", "password": {"env": "X_PW"}}},
    "nodes": [{"name": "uccx-pub", "role": "uccx-publisher", "host": "uccx1.example.com"}],
}
GOOD = {"enabled": True, "ca": "lab", "renew_before": "30d",
        "windows": [{"days": ["sat", "sun"], "start": "01:00", "end": "05:00",
                     "tz": "America/Chicago"}],
        "notify": ["webhook=https://hooks.example.com/cckit"]}


def site_with(tmp_path: Path, block, text: str | None = None):
    path = tmp_path / "east.yaml"
    data = dict(BASE)
    if block is not None:
        data["autopilot"] = block
    path.write_text(text if text is not None else yaml.safe_dump(data))
    return path


def problems(tmp_path, block) -> list[str]:
    with pytest.raises(SiteFileError) as e:
        load_site(site_with(tmp_path, block))
    assert str(tmp_path / "east.yaml") in str(e.value)  # the file is named
    return e.value.problems


def test_a_good_block_and_none(tmp_path):
    site = load_site(site_with(tmp_path, GOOD))
    p = site.autopilot
    assert p.enabled and p.ca == "lab" and p.renew_before == 30 and len(p.windows) == 1
    assert p.windows[0].describe() == "sat, sun 01:00-05:00 America/Chicago"
    assert p.notify == ("webhook=https://hooks.example.com/cckit",)
    assert load_site(site_with(tmp_path, None)).autopilot is None
    weeks = load_site(site_with(tmp_path, {**GOOD, "renew_before": "4w"})).autopilot
    assert weeks.renew_before == 28
    # paused sites need no window
    assert not load_site(site_with(tmp_path, {"enabled": False, "ca": "lab"})).autopilot.enabled


@pytest.mark.parametrize("change, expected", [
    ({"ca": "files", "ca_options": {"outbox": "o", "inbox": "i"}},
     "autopilot.ca: files cannot renew unattended: it waits for a person"),
    ({"ca": "acme", "ca_options": {"directory": "https://acme.example/dir"}},
     "autopilot.ca: acme cannot renew unattended: dns: manual waits for a person"),
    ({"ca": "acme", "ca_options": {"dns": "rfc2136"}},
     "autopilot.ca: the acme CA adapter: missing option directory"),
    ({"ca": "nope"}, "autopilot.ca: unknown CA adapter 'nope' (use one of"),
    ({"ca": None}, "autopilot.ca: missing: the CA adapter"),
    ({"ca_options": {"algoritm": "rsa"}}, "autopilot.ca: the lab CA adapter: unknown option "
     "algoritm"),
    ({"ca": "adcs", "ca_options": {"server": "ca.example.com", "template": "Web",
                                   "username": "svc", "password": "Hunter2-inline"}},
     "autopilot.ca_options.password: secret written inline"),
    ({"enabled": "yes"}, "autopilot.enabled: expected true or false"),
    ({"enabled": None}, "autopilot.enabled: expected true or false (missing"),
    ({"renew_before": "30 days"}, "autopilot.renew_before: expected days such as 30d"),
    ({"renew_before": 0}, "autopilot.renew_before: expected days"),
    ({"windows": []}, "autopilot.windows: none: say when changes may happen"),
    ({"windows": None}, "autopilot.windows: none"),
    ({"windows": [{"start": 90, "end": "05:00", "tz": "UTC"}]},
     'autopilot.windows[0].start: write the time as text in quotes, e.g. "01:00"'),
    ({"windows": [{"start": "25:00", "end": "05:00", "tz": "UTC"}]},
     "autopilot.windows[0].start: expected a time HH:MM"),
    ({"windows": [{"start": "24:00", "end": "05:00", "tz": "UTC"}]},
     "autopilot.windows[0].start: expected a time HH:MM from 00:00 to 23:59"),
    ({"windows": [{"start": "01:00", "end": "01:00", "tz": "UTC"}]},
     "autopilot.windows[0]: start and end are the same time"),
    ({"windows": [{"start": "01:00", "end": "05:00"}]}, "autopilot.windows[0].tz: missing"),
    ({"windows": [{"start": "01:00", "end": "05:00", "tz": "Mars/Olympus"}]},
     "autopilot.windows[0].tz: unknown time zone 'Mars/Olympus'"),
    ({"windows": [{"days": ["sat", "caturday"], "start": "01:00", "end": "05:00",
                   "tz": "UTC"}]}, "autopilot.windows[0].days: expected a list of days"),
    ({"windows": [{"days": [], "start": "01:00", "end": "05:00", "tz": "UTC"}]},
     "autopilot.windows[0].days: an empty list of days never opens"),
    ({"windows": [{"start": "01:00", "end": "05:00", "tz": "UTC", "zone": 1}]},
     "autopilot.windows[0]: unknown key 'zone'"),
    ({"notify": ["carrier-pigeon"]}, "autopilot.notify[0]: --notify 'carrier-pigeon' is not"),
    ({"notify": ["smtp=mail.example.com?to=a@example.com&password=x"]},
     "autopilot.notify[0]: --notify smtp: a password is never an option"),
    ({"pause": True}, "autopilot: unknown key 'pause'"),
])
def test_each_problem_is_one_line_naming_its_field(tmp_path, change, expected):
    found = problems(tmp_path, {**GOOD, **change})
    assert len(found) == 1 and found[0].startswith(expected), found
    assert "\n" not in found[0] and "Hunter2" not in found[0]


def test_every_problem_at_once(tmp_path):
    found = problems(tmp_path, {"enabled": 1, "ca": "files", "renew_before": "soon",
                                "windows": [{"start": "1", "end": "2"}], "x": 1})
    fields = [p.split(":")[0] for p in found]
    assert fields == ["autopilot", "autopilot.enabled", "autopilot.ca",
                      "autopilot.renew_before", "autopilot.windows[0].start",
                      "autopilot.windows[0].end", "autopilot.windows[0].tz"]


def test_times_left_unquoted_in_yaml(tmp_path):
    """`start: 1:30` is the number 90 to YAML; `01:30` stays text."""
    text = yaml.safe_dump({**BASE, "autopilot": {**GOOD, "windows": []}}).replace(
        "windows: []", "windows:\n  - {start: 01:30, end: 4:00, tz: UTC}")
    with pytest.raises(SiteFileError) as e:
        load_site(site_with(tmp_path, None, text))
    assert e.value.problems == ['autopilot.windows[0].end: write the time as text in quotes, '
                                'e.g. "01:00" (YAML reads 1:30 unquoted as the number 90)']


def test_secret_references_in_ca_options_and_where_the_ca_keeps_its_state(tmp_path):
    block = {**GOOD, "ca": "acme", "ca_options": {
        "directory": "https://acme.example/dir", "dns": "rfc2136", "agree_tos": True,
        "ca_bundle": "pki/acme-tls.pem",
        "dns_options": {"server": "ns1.example.com", "zone": "example.com",
                        "tsig_name": "k.", "tsig_secret": {"file": "secrets/tsig"}}}}
    site = load_site(site_with(tmp_path, block))
    opts = renew.ca_options(site, tmp_path / "state")
    assert opts["ca_bundle"] == str(tmp_path / "pki" / "acme-tls.pem")
    assert opts["state_dir"] == str((tmp_path / "state").resolve() / "ca" / "east" / "acme")
    assert opts["dns_options"]["tsig_secret"] == {"file": str(tmp_path / "secrets" / "tsig")}
    lab = renew.ca_options(load_site(site_with(tmp_path, GOOD)), tmp_path / "state")
    assert lab == {"directory": str((tmp_path / "state").resolve() / "ca" / "east" / "lab"),
                   "site": "east"}


def test_a_secret_reference_may_be_a_runbook_parameter_a_secret_never(tmp_path):
    """What the autopilot hands a headless run: a reference passes the parameter check (the
    adapter resolves it in the kernel), a value never does."""
    from cckit.credentials import secret_refs
    from cckit.errors import InputError
    from cckit.headless import check_parameters

    ok = {"ca": "acme", "ca_options": {"directory": "https://acme.example/dir",
                                       "dns": "rfc2136", "dns_options": {
                                           "server": "ns1", "zone": "example.com",
                                           "tsig_name": "k.",
                                           "tsig_secret": {"env": "ACME_TSIG_VAR"}}}}
    check_parameters("ca_signed", ok)
    refs, problems = secret_refs(ok)  # what headless scrubs from the record after the run
    assert [t for r in refs for t in r.targets()] == ["ACME_TSIG_VAR"] and problems == []
    bad = {"ca": "acme", "ca_options": {**ok["ca_options"], "dns_options": {
        **ok["ca_options"]["dns_options"], "tsig_secret": "Hunter2-value"}}}
    with pytest.raises(InputError, match="passwords are never parameters") as e:
        check_parameters("ca_signed", bad)
    assert "Hunter2" not in str(e.value)
    with pytest.raises(InputError, match="passwords are never parameters"):
        check_parameters("ca_signed", {"ca_options": {"password": {"env": "X", "file": "y"}}})


def test_a_pass_names_an_invalid_site_file_and_fails_touching_nothing(tmp_path):
    import subprocess
    import sys

    folder = tmp_path / "sites"
    folder.mkdir()
    (folder / "broken.yaml").write_text(yaml.safe_dump({**BASE, "site": "broken",
                                                        "autopilot": {**GOOD, "ca": "files"}}))
    site_with(folder, None)  # a site without autopilot: never contacted
    state = tmp_path / "state"
    r = subprocess.run([sys.executable, "-m", "cckit.cli", "renew", "--sites", str(folder),
                        "--state", str(state), "--dry-run"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "broken  invalid" in r.stdout and "files cannot renew unattended" in r.stdout
    assert "east    off          no autopilot: block" in r.stdout
    assert not state.exists()
    r = subprocess.run([sys.executable, "-m", "cckit.cli", "renew", "--sites", str(folder),
                        "--state", str(state), "--now", "2026-01-01T00:00:00Z"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "--now only goes with --dry-run or --status" in r.stderr
    assert not state.exists()
