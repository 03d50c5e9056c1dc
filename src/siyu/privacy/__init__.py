"""Personal-data protection (PIPL): field encryption, masking, defaults.

- :mod:`siyu.privacy.keys`: AES-GCM sealing and blind indexes under a workspace key.
- :func:`mask_value`: the display form of a personal value (``138****8000``).
- ``ws.privacy`` (:class:`siyu.services.privacy.Privacy`): consent checks,
  export, erasure, legal holds, the audit log and key rotation.
"""

from __future__ import annotations

from .._text import DEFAULT_PERSONAL, DEFAULT_SENSITIVE, mask, mask_value

__all__ = ["DEFAULT_PERSONAL", "DEFAULT_SENSITIVE", "mask", "mask_value"]
