"""The operation journal: every command a node received, one JSON line each, in its state dir.

`nodes/<name>/journal.jsonl`: `{"time", "node", "via", "command"}` for each line typed at the
`admin:` prompt or sent as an SSH exec request (`via` "cli" / "exec") and each certmgr REST
request (`via` "rest", method and path). Answers to a command's own questions (a pasted
certificate, the COP wizard's fields, a password) are not commands and are never written.
Tests read it to prove what a client sent, e.g. that an inventory sweep only read.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

JOURNAL = "journal.jsonl"


def record(node, command: str, via: str) -> None:
    """Append one entry to `node`'s journal (one write on an O_APPEND descriptor)."""
    line = json.dumps({"time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                       "node": node.name, "via": via, "command": command}) + "\n"
    fd = os.open(node.path(JOURNAL), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read(state_dir: str | os.PathLike) -> list[dict]:
    """Every journal entry under a site's (or many sites') state directory, in file order."""
    out: list[dict] = []
    for path in sorted(Path(state_dir).rglob(JOURNAL)):
        out += [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return out
