"""Unit tests of the VOS CLI client's pure parts (no SSH): names, screen text, transcripts."""

from __future__ import annotations

import pytest

from cckit.vos.base import VersionInfo


@pytest.fixture(autouse=True)
def _own_secrets(monkeypatch):
    """redact() masks every secret the process resolved; other tests register short ones
    ("p"), which would mask letters of these transcripts: start from none."""
    from cckit import credentials

    monkeypatch.setattr(credentials, "_known", set())


def test_has_cop_ignores_the_sgn_of_the_signed_file():
    # `show version active` lists installed COPs without `.sgn` (public transcripts)
    v = VersionInfo("11.5.1.12900-21", ("cmterm-devicepack9.1.2.13070-1.cop",
                                        "ciscouccx.1151.ES01.ecdsa-disable.cop"))
    assert v.has_cop("ciscouccx.1151.ES01.ecdsa-disable.cop.sgn")
    assert v.has_cop("cmterm-devicepack9.1.2.13070-1.cop")
    assert not v.has_cop("ciscouccx.1151.ES01.ecdsa-rollback.cop.sgn")
    # a node that does print the .sgn still matches
    assert VersionInfo("11.5", ("x.cop.sgn",)).has_cop("x.cop.sgn")
    assert not VersionInfo("11.5", ()).has_cop("x.cop.sgn")


def test_screen_text_drops_erased_pager_lines_and_ansi():
    from cckit.vos.ssh import PAGER, _screen

    raw = ("line 1\r\nline 2\r\n\x1b[1m" + PAGER + "\x1b[0m\r\x1b[Kline 3\r\n"
           "\x1b[1m" + PAGER + "\x1b[0m\r\x1b[Kadmin:")
    assert _screen(raw) == "line 1\nline 2\nline 3\nadmin:"


def test_transcript_round_trip_redacts_secrets_and_pasted_certificates(tmp_path):
    from cryptography.hazmat.primitives.serialization import Encoding

    from cckit.credentials import Secret
    from cckit.vos.transcript import (
        SECRET_LINE,
        Record,
        TranscriptWriter,
        certificate_marker,
        parse,
    )

    from .certfactory import make_root

    ca = make_root("Replay Root CA")
    pem = ca.cert.public_bytes(Encoding.PEM).decode().strip()
    body = pem.split("\n", 1)[1].rsplit("\n", 1)[0]
    secret = Secret("s3cr3t-sftp-pass")
    path = tmp_path / "t" / "node.log"
    w = TranscriptWriter(path, ("node uccx-pub",))
    w.received("Welcome\r\n\r\nadmin:")
    w.line("set cert import trust tomcat")
    w.received("set cert import trust tomcat\r\nPaste the Certificate and Hit Enter\r\n")
    w.paste(pem)
    w.received(pem.replace("\n", "\r\n") + "\r\nSuccessfully imported certificate for tomcat.\r\n"
               "\x1b[1mPress\x1b[0m\r\x1b[Kadmin:")
    w.line("show cert trust tomcat-trust/x.pem")
    w.received("show cert trust tomcat-trust/x.pem\r\n" + pem.replace("\n", "\r\n") + "\r\nadmin:")
    w.line(secret.reveal())
    w.key(" ")
    w.close()
    text = path.read_text()
    assert text == w.text()
    assert "s3cr3t-sftp-pass" not in text and f"> {SECRET_LINE}" in text
    marker = certificate_marker(body)
    # the paste and its echo carry the marker; `show cert` output keeps the certificate
    assert text.count(marker) == 2 and text.count(body.split("\n")[0]) == 1
    records = parse(text)
    kinds = [r.kind for r in records]
    assert kinds == ["out", "line", "out", "line", "line", "line", "out", "line", "out",
                     "line", "key"]
    assert records[0] == Record("out", "Welcome\n\nadmin:")
    assert records[3].value == "-----BEGIN CERTIFICATE-----" and records[4].certificate_body
    assert records[6].value.endswith("\x1b[1mPress\x1b[0m\r\x1b[Kadmin:")
    assert records[9].secret and records[10] == Record("key", "space")


def test_keyboard_interactive_answers_password_prompts_only():
    import paramiko
    import pytest

    from cckit.credentials import Secret
    from cckit.vos.ssh import _kbdint_handler

    answer = _kbdint_handler("admin", Secret("pw-123456"))
    assert answer("", "", [("Password: ", False)]) == ["pw-123456"]
    assert answer("", "", [("Username: ", True), ("password:", False)]) == ["admin", "pw-123456"]
    assert answer("", "", []) == []
    with pytest.raises(paramiko.AuthenticationException, match="Verification code"):
        answer("", "", [("Verification code: ", True)])


def test_transcript_records_silences(monkeypatch):
    import time

    from cckit.vos import transcript

    monkeypatch.setattr(transcript, "PAUSE_MIN", 0.05)
    w = transcript.TranscriptWriter()
    w.received("Command Line Interface is starting up, please wait ...\r\n")
    time.sleep(0.08)
    w.received("admin:")
    records = transcript.parse(w.text())
    assert [r.kind for r in records] == ["out", "pause", "out"]
    assert records[1].seconds >= 0.05 and records[2].value == "admin:"
