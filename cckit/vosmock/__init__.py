"""The VOS mock: a simulated UCCX 11.5 site (publisher, subscriber, SocialMiner) on loopback.

Self-contained: imports nothing from the rest of cckit. See README.md in this folder.
"""

from .faults import Faults, NodeFaults
from .site import MockServer, MockSite

__all__ = ["Faults", "MockServer", "MockSite", "NodeFaults", "running_site"]


def running_site(*args, **kwargs):
    """A mock site served from a background thread: ``with running_site(dir) as site:``
    (see ``inprocess.running_site``); what the runbooks' embedded mock and tests use."""
    from .inprocess import running_site as _running_site

    return _running_site(*args, **kwargs)
