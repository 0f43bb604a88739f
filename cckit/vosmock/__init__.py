"""The VOS mock: a simulated UCCX 11.5 site (publisher, subscriber, SocialMiner) on loopback.

Self-contained: imports nothing from the rest of cckit. See README.md in this folder.
"""

from .faults import Faults, NodeFaults
from .site import MockServer, MockSite

__all__ = ["Faults", "MockServer", "MockSite", "NodeFaults"]
