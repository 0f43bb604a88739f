"""CA adapters: where CSRs go to be signed and signed certificates come back from.

One interface (:class:`CertificateAuthority`), several plug-ins, certbot style. Built-in:
``lab`` (an EC test CA kept in a directory), ``files`` (an outbox/inbox for an offline or
enterprise CA) and ``adcs`` (Microsoft AD CS web enrollment; needs the ``certsrv`` package,
installed separately: it has had no release since 2018, so cckit does not depend on it) and
``acme`` (an RFC 8555 server with DNS-01; ``pip install 'cckit[acme]'``). Each can say what
it signs with before any CSR is sent (:meth:`CertificateAuthority.signing_key`).
Third-party adapters register under the ``cckit.ca`` entry-point group.
"""

from .base import CertificateAuthority, SignedCertificate, SigningKey, sign_all
from .registry import check_options, get_adapter

__all__ = ["CertificateAuthority", "SignedCertificate", "SigningKey", "check_options",
           "get_adapter", "sign_all"]
