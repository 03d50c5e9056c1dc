"""Personal-data protection (PIPL): field encryption, masking, defaults.

- :mod:`siyu.privacy.keys`: AES-GCM sealing and blind indexes under a workspace key.
- :func:`mask_value`: the display form of a personal value (``138****8000``).
- ``ws.privacy`` (:class:`siyu.services.privacy.Privacy`): consent checks,
  export, erasure, legal holds, the audit log and key rotation.
"""

from __future__ import annotations

import re

from ..identities import mask, mask_phone

__all__ = ["DEFAULT_PERSONAL", "DEFAULT_SENSITIVE", "mask", "mask_value"]

#: Attribute names treated as personal information unless configured otherwise
#: (``ws.privacy.mark_personal``): sealed at rest when the workspace has a key, masked in reprs.
DEFAULT_PERSONAL: frozenset[str] = frozenset(
    {"name", "real_name", "nickname", "address", "birthday", "id_number", "health", "religion", "bank_account"}
)
#: Sensitive personal information (PIPL art. 28): needs the person's separate consent
#: (purpose ``"sensitive_data"``) before it is stored. Always also personal.
DEFAULT_SENSITIVE: frozenset[str] = frozenset({"id_number", "health", "religion", "bank_account"})

_PHONE_LIKE = re.compile(r"^\+?[\d\s\-]{7,20}$")


def mask_value(value: object) -> str:
    """Mask any personal value for display: phones as ``138****8000``, e-mails as
    ``a***@example.com``, other text keeps its first characters (``张*``, ``上海***``)."""
    if value is None:
        return ""
    text = str(value)
    if _PHONE_LIKE.match(text):
        return mask_phone(re.sub(r"[\s\-]", "", text))
    if "@" in text:
        return mask("email", text)
    if len(text) <= 2:
        return text[:1] + "*" * (len(text) - 1)
    return text[:2] + "***"
