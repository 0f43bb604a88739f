"""The per-node CLI transcript: what cckit typed and what the node printed, secrets redacted.

A run saves one per node (``transcripts/<node>.log`` in the run folder). The same text format
is what ``tests/transcripts/`` replays to the client, so a transcript taken on a real node
becomes a replay fixture by editing, not by conversion (docs/transcripts.md). One record a
line::

    # text                        a comment (the header: node, when, source)
    | text                        text the node printed. A run of ``|`` lines is joined with
                                  newlines and its last line has none of its own (a prompt
                                  such as ``admin:``); text that ends with a newline ends
                                  with an empty ``| `` line.
    > text                        a line cckit typed (Enter included)
    > ********                    a secret line (a password): replay accepts any line
    > <certificate sha256 AB:..>  inside a pasted or echoed PEM: stands for its base64 body
    >key space                    one keystroke without Enter: ``space``, ``enter`` or ``q``
    %% pause 2.5                  the node printed nothing for this long (seconds)

In ``|`` and ``>`` text: ``\\\\`` is a backslash, ``\\x1b`` ESC, ``\\r`` a carriage return not
followed by a newline, ``\\xHH`` any other control character.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..credentials import MASK, redact

#: how a typed secret line reads in a transcript (and in replay fixtures)
SECRET_LINE = "********"  # noqa: S105  (a mask, not a password)

__all__ = ["Record", "TranscriptWriter", "certificate_marker", "parse"]

PAUSE_MIN = 1.0  # silences at least this long (seconds) are recorded
KEYS = {" ": "space", "\r": "enter", "\n": "enter", "q": "q"}
_PEM = re.compile(r"(-----BEGIN ([A-Z0-9 ]+)-----\r?\n)(.*?)(\r?\n-----END \2-----)", re.S)
_MARKER = re.compile(r"^<certificate sha256 [0-9A-F:]+>$")


def certificate_marker(body: str) -> str:
    """``<certificate sha256 ...>`` for a PEM's base64 body (the DER's fingerprint)."""
    try:
        der = base64.b64decode("".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        der = body.encode()
    return f"<certificate sha256 {hashlib.sha256(der).hexdigest().upper()}>"


_ESCAPED = re.compile(r"[\\\x00-\x08\x0b-\x1f\x7f]")  # backslash, controls but tab, LF


def _escape_one(m: re.Match[str]) -> str:
    ch = m.group(0)
    return {"\\": "\\\\", "\x1b": "\\x1b", "\r": "\\r"}.get(ch, f"\\x{ord(ch):02x}")


def _escape(text: str) -> str:
    """Backslash, ESC, CR and the other control characters (tab and LF kept) written as
    escapes, so a transcript line shows what the node sent, byte for byte."""
    return _ESCAPED.sub(_escape_one, text)


_UNESCAPE = re.compile(r"\\(\\|r|x[0-9a-fA-F]{2})")


def _unescape(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        tok = m.group(1)
        if tok == "\\":
            return "\\"
        if tok == "r":
            return "\r"
        return chr(int(tok[1:], 16))

    return _UNESCAPE.sub(one, text)


@dataclass(frozen=True)
class Record:
    """One step of a transcript: ``out`` (text the node printed), ``line`` (typed + Enter),
    ``key`` (one keystroke), ``pause`` (seconds of silence)."""

    kind: str
    value: str = ""
    seconds: float = 0.0

    @property
    def secret(self) -> bool:
        return self.kind == "line" and self.value in (SECRET_LINE, MASK)

    @property
    def certificate_body(self) -> bool:
        return self.kind == "line" and bool(_MARKER.match(self.value))


def parse(text: str) -> list[Record]:
    """The records of a transcript (comments dropped, ``|`` runs joined)."""
    records: list[Record] = []
    out: list[str] | None = None

    def flush() -> None:
        nonlocal out
        if out is not None:
            records.append(Record("out", _unescape("\n".join(out))))
            out = None

    for n, raw in enumerate(text.splitlines(), 1):
        if raw.startswith("|"):
            if out is None:
                out = []
            out.append(raw[2:] if raw.startswith("| ") else raw[1:])
            continue
        flush()
        if not raw.strip() or raw.startswith("#"):
            continue
        if raw.startswith(">key "):
            key = raw[5:].strip()
            if key not in ("space", "enter", "q"):
                raise ValueError(f"line {n}: unknown key {key!r}")
            records.append(Record("key", key))
        elif raw.startswith(">"):
            records.append(Record("line", _unescape(raw[2:] if raw.startswith("> ") else raw[1:])))
        elif raw.startswith("%% pause "):
            records.append(Record("pause", seconds=float(raw[9:])))
        else:
            raise ValueError(f"line {n}: not a transcript record: {raw!r}")
    flush()
    return records


class TranscriptWriter:
    """Collects one node's CLI session and (when ``path`` is set) appends it to a file.

    Received text is kept until the next thing is typed, so a PEM split across reads is
    redacted whole. Everything written goes through :func:`cckit.credentials.redact`;
    certificates cckit pastes (and the node's echo of them) keep their BEGIN/END lines but
    their body becomes a :func:`certificate_marker`; private keys never appear.
    """

    def __init__(self, path: Path | None = None, header: tuple[str, ...] = ()) -> None:
        self.path = path
        self._lines: list[str] = []
        self._pending: list[str | float] = []  # received text and pauses (floats)
        self._echo: dict[str, str] = {}  # body of the PEM just pasted -> marker
        self._last = time.monotonic()
        self._lock = threading.Lock()
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._emit([f"# {h}" for h in header] + [f"# session opened {stamp}"])

    # -------------------------------------------------------------- events
    def received(self, text: str) -> None:
        if not text:
            return
        with self._lock:
            now = time.monotonic()
            if now - self._last >= PAUSE_MIN:
                self._pending.append(round(now - self._last, 1))
            self._last = now
            self._pending.append(text)

    def line(self, text: str) -> None:
        """A line typed (Enter included); a line that is a secret is written ``********``."""
        clean = self._clean(text)
        self._typed([f"> {SECRET_LINE if clean == MASK else _escape(clean)}"])

    def paste(self, pem: str) -> None:
        """A pasted PEM (typed line by line). Its body, and the node's echo of it, become a
        marker; the same certificate shown later by ``show cert`` is kept as printed."""
        m = _PEM.search(pem)
        pasted = {"".join(m.group(3).split()): certificate_marker(m.group(3))} if m else {}
        with self._lock:
            self._emit(self._render_pending())
            self._pending = []
            self._echo = pasted
            lines = self._clean(pem).strip("\n").split("\n")
            self._emit([f"> {_escape(x)}" for x in lines])
            self._last = time.monotonic()

    def key(self, char: str) -> None:
        self._typed([f">key {KEYS.get(char, 'space')}"])

    def note(self, text: str) -> None:
        self._typed([f"# {redact(text)}"])

    def close(self) -> None:
        self._typed([])

    # -------------------------------------------------------------- output
    def text(self) -> str:
        """Everything so far, in the transcript format."""
        with self._lock:
            return "\n".join(self._lines + self._render_pending()) + "\n"

    def _typed(self, lines: list[str]) -> None:
        with self._lock:
            self._emit(self._render_pending() + lines)
            self._pending = []
            self._echo = {}
            self._last = time.monotonic()

    def _render_pending(self) -> list[str]:
        out: list[str] = []
        text = ""
        for item in [*self._pending, 0.0]:
            if isinstance(item, str):
                text += item
                continue
            if text:
                body = _escape(self._clean(text).replace("\r\n", "\n"))
                out.extend(f"| {x}" if x else "|" for x in body.split("\n"))
                text = ""
            if item:
                out.append(f"%% pause {item}")
        return out

    def _clean(self, text: str) -> str:
        def pem(m: re.Match[str]) -> str:
            kind, body = m.group(2), m.group(3)
            if "PRIVATE KEY" in kind:
                return f"{m.group(1)}<private key redacted>{m.group(4)}"
            marker = self._echo.get("".join(body.split()))
            return f"{m.group(1)}{marker}{m.group(4)}" if marker else m.group(0)

        # PEMs first (a body is compared as sent), then every secret this process knows
        return redact(_PEM.sub(pem, text))

    def _emit(self, lines: list[str]) -> None:
        if not lines:
            return
        self._lines.extend(lines)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
