"""cckit: executable runbooks for ECDSA (tomcat-ECDSA) certificates on UCCX 11.5 and SocialMiner.

The public API is small: load a site (:func:`load_site`), inspect and gate certificates
(:mod:`cckit.certs`), and run the procedures. Every deliberate error is a :class:`CckitError`.
"""

from .errors import CckitError
from .sites import Site, load_site

__version__ = "0.1.0"
__all__ = ["CckitError", "Site", "__version__", "load_site"]
