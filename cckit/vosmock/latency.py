"""How long a real node takes for each operation: the mock's latency profile.

``PROFILE`` holds a real UCCX 11.5 / SocialMiner node's durations in seconds; the source of
each is in the comment beside it ([doc]: published; [assumed]: our estimate, no public
figure found). A site uses ``NONE`` (today's instant behaviour, what unit tests want) unless
given ``latency="cisco"`` (this profile) or a dict overriding some entries; every duration,
the restart and CLI start-up included, is multiplied by ``time_scale``, so a test or a
benchmark runs the same proportions in a fraction of the time.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["NONE", "PROFILE", "resolve"]

PROFILE: dict[str, float] = {
    # [doc] ponchotitlan/ansible_cucm_cop_file_installer (library/README.md): 8 s from login
    # to the first admin: prompt on an 11.5 node (up to a minute on a busy one)
    "cli_startup": 8.0,
    # [assumed] `set csr gen`: key generation and CSR signing on a 2-vCPU VM; seconds
    "csr_generate": 15.0,
    # [assumed] `set cert import trust` / `own`: validation, store write, DB replication
    "trust_import": 20.0,
    "cert_import": 30.0,
    # [assumed] `utils service restart Cisco Tomcat`: Cisco's guides say the restart "can
    # take several minutes"; 3 min stop+start on 11.5 (half stopping, half starting)
    "restart:Cisco Tomcat": 180.0,
    # [assumed] the other web services (Finesse Tomcat, Socket.IO, SocialMiner's own)
    "restart": 120.0,
    # [assumed] SFTP download of a COP of a few MB over a LAN, then the install itself
    "cop_download": 30.0,
    "cop_install": 90.0,
    # [doc] the VOS CLI itself warns "Restart could take up to 5 minutes"
    "reboot": 300.0,
    # [assumed] trust imported on the publisher reaching the subscriber: asynchronous [doc:
    # the procedure, "automatically replicated"], no public figure found; a minute
    "trust_replication": 60.0,
    # [assumed] Finesse's SystemInfo saying IN_SERVICE after Cisco Finesse Tomcat's TLS is
    # back: it must reach CTI and its notification service first [doc: Finesse developer
    # guide, "Failure Scenarios"; 503 "when the system is just starting up"]; no public
    # figure found; two minutes
    "finesse_ready": 120.0,
}

#: Instant operations (the mock's behaviour before profiles): restarts then take
#: ``restart_seconds``, the CLI ``cli_startup_seconds``, as before.
NONE: dict[str, float] = {}


def resolve(latency: str | Mapping[str, float] | None) -> dict[str, float]:
    """``None``/"none" -> NONE; "cisco" -> PROFILE; a dict -> PROFILE overridden by it."""
    if latency is None or latency == "none":
        return dict(NONE)
    if latency == "cisco":
        return dict(PROFILE)
    if isinstance(latency, Mapping):
        unknown = [k for k in latency if k not in PROFILE and not k.startswith("restart:")]
        if unknown:
            raise ValueError(f"unknown latency entries {unknown} (known: {', '.join(PROFILE)})")
        return {**PROFILE, **{k: float(v) for k, v in latency.items()}}
    raise ValueError(f"latency must be 'none', 'cisco' or a dict, not {latency!r}")
