"""Site files and secret references."""

from __future__ import annotations

import copy
import os
import pickle
import re
import typing
from pathlib import Path

import pytest
import yaml

from cckit import credentials, sites
from cckit.errors import CredentialError, SiteFileError

GOOD = {
    "site": "lab-east",
    "domain": "cc.example.com",
    "credentials": {
        "os-admin": {"username": "administrator", "password": {"env": "CCKIT_TEST_PW"}},
        "sftp": {"username": "copuser", "password": {"file": "sftp.pw"}},
    },
    "known_hosts": "known_hosts",
    "nodes": [
        {"name": "pub", "role": "uccx-publisher", "host": "uccx1.cc.example.com",
         "address": "10.0.0.1", "web_ports": [8443, 8445, 12015]},
        {"name": "sub", "role": "uccx-subscriber", "host": "uccx2.cc.example.com",
         "ssh_port": 2222, "web_ports": [8443]},
        {"name": "sm", "role": "socialminer", "host": "sm.cc.example.com", "web_ports": [443],
         "transport": "rest", "rest": {"port": 8443, "cafile": "ca.pem"}},
    ],
    "cop_repository": {"host": "10.0.0.50", "port": 22, "directory": "/cop",
                       "credential": "sftp"},
    "cop_files": {"uccx_disable": "uccx-ecdsa-disable.cop.sgn",
                  "uccx_rollback": "uccx-ecdsa-rollback.cop.sgn"},
}


def write(tmp_path: Path, data) -> Path:
    p = tmp_path / "site.yaml"
    p.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return p


def test_good_site(tmp_path):
    site = sites.load_site(write(tmp_path, GOOD))
    assert site.name == "lab-east"
    assert site.publisher.name == "pub" and site.publisher.address == "10.0.0.1"
    assert [n.name for n in site.subscribers] == ["sub"]
    assert site.node("sub").address == "uccx2.cc.example.com"  # defaults to host
    assert site.node("sub").ssh_port == 2222 and site.node("pub").ssh_port == 22
    assert site.node("sm").rest.cafile == tmp_path / "ca.pem"
    assert site.known_hosts == tmp_path / "known_hosts"
    assert site.cop_repository.directory == "/cop"
    assert site.cop_files.for_node(site.node("sub"), "disable") == "uccx-ecdsa-disable.cop.sgn"
    assert site.cop_files.for_node(site.node("sm"), "rollback") is None
    assert [n.name for n in site.select(["sm", "pub"])] == ["pub", "sm"]
    with pytest.raises(SiteFileError, match="unknown node"):
        site.select(["nope"])


def mutate(fn):
    data = copy.deepcopy(GOOD)
    fn(data)
    return data


CASES = {
    "missing publisher": (lambda d: d["nodes"].pop(0), "no node has role uccx-publisher"),
    "two publishers": (lambda d: d["nodes"][1].update(role="uccx-publisher"),
                       "two or more publishers (pub, sub)"),
    "duplicate hosts": (lambda d: d["nodes"][1].update(host="UCCX1.cc.example.com"),
                        "duplicate host 'UCCX1.cc.example.com' (nodes pub and sub)"),
    "duplicate names": (lambda d: d["nodes"][2].update(name="pub"), "duplicate node name"),
    "unknown role": (lambda d: d["nodes"][2].update(role="finesse"),
                     "unknown role 'finesse'"),
    "bad port": (lambda d: d["nodes"][0].update(ssh_port=70000), "bad port 70000"),
    "bad web port": (lambda d: d["nodes"][0].update(web_ports=["https"]), "bad port 'https'"),
    "inline secret": (lambda d: d["credentials"]["os-admin"].update(password="hunter2"),
                      "secret written inline"),
    "inline repo secret": (lambda d: d["cop_repository"].update(password="hunter2"),
                           "cop_repository.password: secret written inline"),
    "password on a node": (lambda d: d["nodes"][0].update(password="hunter2"),
                           "unknown key 'password' (secrets go under credentials:"),
    "undefined credential": (lambda d: d["nodes"][0].update(credential="root"),
                             "credential 'root' is not defined"),
    "unknown transport": (lambda d: d["nodes"][0].update(transport="telnet"),
                          "unknown transport 'telnet'"),
    "rest without port": (lambda d: d["nodes"][2].pop("rest"), "transport rest needs rest:"),
    "missing host": (lambda d: d["nodes"][0].pop("host"), "missing 'host'"),
    "bad cop name": (lambda d: d["cop_files"].update(uccx_disable="/tmp/x.cop"),
                     "should be a file name ending in .cop.sgn"),
    "two subscribers": (lambda d: d["nodes"][2].update(role="uccx-subscriber"),
                        "more than one uccx-subscriber"),
    "unknown secret source": (lambda d: d["credentials"]["os-admin"].update(
        password={"vault": "x"}), "unknown secret source (use env, keyring or file)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_site_files(tmp_path, case):
    fn, message = CASES[case]
    path = write(tmp_path, mutate(fn))
    with pytest.raises(SiteFileError) as e:
        sites.load_site(path)
    assert message in str(e.value), str(e.value)
    assert e.value.file == str(path)
    assert "hunter2" not in str(e.value)


def test_every_problem_is_listed_at_once(tmp_path):
    def break_many(d):
        d["nodes"][0]["ssh_port"] = 0
        d["nodes"][2]["role"] = "cucm"
        d["credentials"]["os-admin"]["password"] = "hunter2"

    with pytest.raises(SiteFileError) as e:
        sites.load_site(write(tmp_path, mutate(break_many)))
    assert len(e.value.problems) == 3, e.value.problems
    # a publisher with a bad port is not also reported missing
    assert not any("no node has role" in p for p in e.value.problems)


def test_not_yaml_and_not_a_mapping(tmp_path):
    with pytest.raises(SiteFileError, match=r"not valid YAML at line \d"):
        sites.load_site(write(tmp_path, "site: [unclosed\nnodes: {"))
    with pytest.raises(SiteFileError, match="must be a YAML mapping"):
        sites.load_site(write(tmp_path, "- just a list\n"))
    with pytest.raises(SiteFileError, match="cannot read"):
        sites.load_site(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------- secrets


def test_secret_never_prints_itself():
    s = credentials.Secret("s3cret-value")
    assert "s3cret" not in repr(s) and "s3cret" not in str(s) and "s3cret" not in f"{s}"
    assert "s3cret" not in repr([s]) and "s3cret" not in repr({"pw": s})
    assert s.reveal() == "s3cret-value"
    with pytest.raises(TypeError):
        pickle.dumps(s)
    assert credentials.redact("login with s3cret-value now") == \
        f"login with {credentials.MASK} now"


def test_resolve_env(tmp_path, monkeypatch):
    site = sites.load_site(write(tmp_path, GOOD))
    monkeypatch.delenv("CCKIT_TEST_PW", raising=False)
    with pytest.raises(CredentialError, match=r"variable named in credentials\.os-admin\.password "
                       r"is not set") as e:
        site.credential_for(site.publisher)
    # the variable's name is not repeated: an operator may have pasted the password there
    assert e.value.node == "pub" and "CCKIT_TEST_PW" not in str(e.value)
    monkeypatch.setenv("CCKIT_TEST_PW", "pw-from-env")
    user, secret = site.credential_for(site.publisher)
    assert user == "administrator" and secret.reveal() == "pw-from-env"


def test_resolve_file_requires_0600(tmp_path):
    ref, problems = credentials.parse_secret_ref({"file": "pw"}, "x", tmp_path)
    assert not problems
    with pytest.raises(CredentialError, match="cannot be read"):
        credentials.resolve(ref)
    f = tmp_path / "pw"
    f.write_text("file-secret\n")
    os.chmod(f, 0o644)
    with pytest.raises(CredentialError, match=re.escape("readable by others (mode 0644)")) as e:
        credentials.resolve(ref)
    assert "file-secret" not in str(e.value) and "chmod 600" in str(e.value)
    os.chmod(f, 0o600)
    assert credentials.resolve(ref).reveal() == "file-secret"
    f.write_text("")
    with pytest.raises(CredentialError, match="empty"):
        credentials.resolve(ref)


def test_resolve_keyring(monkeypatch):
    keyring = pytest.importorskip("keyring")
    from keyring.backend import KeyringBackend

    class Memory(KeyringBackend):
        priority = 1
        store: typing.ClassVar[dict] = {}

        def get_password(self, service, username):
            return self.store.get((service, username))

        def set_password(self, service, username, password):
            self.store[(service, username)] = password

        def delete_password(self, service, username):
            self.store.pop((service, username), None)

    old = keyring.get_keyring()
    keyring.set_keyring(Memory())
    try:
        ref, _ = credentials.parse_secret_ref(
            {"keyring": {"service": "cckit", "username": "sm-admin"}}, "x")
        with pytest.raises(CredentialError, match="keyring entry named in x does not exist"):
            credentials.resolve(ref)
        keyring.set_password("cckit", "sm-admin", "from-keyring")
        assert credentials.resolve(ref).reveal() == "from-keyring"
    finally:
        keyring.set_keyring(old)
