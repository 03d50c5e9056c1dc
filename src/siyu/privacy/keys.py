"""Field encryption for personal data: AES-256-GCM plus a keyed blind index.

A workspace key (``siyu.connect(..., secret_key=...)`` or the environment
variable ``SIYU_SECRET_KEY``) is stretched with HKDF-SHA256 into two
independent keys:

- an AES-256-GCM key that seals values (phone numbers, e-mail addresses,
  personal attributes); every value gets a fresh 96-bit nonce, and the field
  it belongs to is bound in as associated data, so a ciphertext copied into
  another column does not decrypt;
- an HMAC-SHA256 key for the *blind index*: a deterministic keyed digest of
  a value, stored next to the ciphertext so ``ws.users.find(phone=...)`` is
  an indexed equality lookup without ever storing the number in clear.

A sealed value looks like ``s1.<key id>.<base64url(nonce || ciphertext)>``;
the key id (a digest of the key, not the key) lets siyu say "wrong key"
instead of producing garbage. Generate a key with ``siyu privacy
generate-key`` or :func:`generate_key`.

Needs the ``cryptography`` package (extra ``siyu[privacy]``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from typing import Any

from .._validation import check_unicode
from ..errors import StorageError, ValidationError, WrongKeyError

__all__ = ["FieldCipher", "generate_key", "key_from_env"]

#: Environment variable read when ``connect`` gets no ``secret_key``.
ENV_VAR = "SIYU_SECRET_KEY"
_PREFIX = "s1"
_MIN_KEY_BYTES = 16


def generate_key() -> str:
    """A new random workspace key (32 bytes, URL-safe base64). Store it in a secret manager."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def key_from_env() -> str | None:
    value = os.environ.get(ENV_VAR, "").strip()
    return value or None


def _key_bytes(secret: str | bytes) -> bytes:
    if isinstance(secret, str):
        raw = check_unicode(secret, "secret_key").strip().encode()
    elif isinstance(secret, bytes):
        raw = secret
    else:
        raise ValidationError(f"secret_key must be a str or bytes, got {type(secret).__name__}")
    if len(raw) < _MIN_KEY_BYTES:
        raise ValidationError(
            f"secret_key is {len(raw)} bytes; use at least {_MIN_KEY_BYTES} random bytes, "
            "e.g. the output of `siyu privacy generate-key`"
        )
    return raw


def _hkdf(master: bytes, info: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"siyu-pii-v1", info=info).derive(master)


class FieldCipher:
    """Seals and opens personal values under one workspace key; computes blind indexes.

    >>> cipher = FieldCipher("0123456789abcdef-example-key")
    >>> token = cipher.seal("+8613800138000", "identity:phone")
    >>> cipher.open(token, "identity:phone")
    '+8613800138000'
    >>> cipher.blind("phone", "", "+8613800138000") == cipher.blind("phone", "", "+8613800138000")
    True
    """

    def __init__(self, secret: str | bytes) -> None:
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError as exc:
            raise StorageError(
                f"encrypting personal data needs the cryptography package: pip install 'siyu[privacy]' ({exc})"
            ) from None
        master = _key_bytes(secret)
        self._aead: Any = AESGCM(_hkdf(master, b"siyu aes-256-gcm"))
        self._index_key = _hkdf(master, b"siyu blind-index hmac-sha256")
        #: Identifies the key (not secret): the first 8 hex digits of a keyed digest.
        self.key_id = hmac.new(_hkdf(master, b"siyu key-id"), b"key-id", hashlib.sha256).hexdigest()[:8]

    def __repr__(self) -> str:
        return f"<FieldCipher key {self.key_id}>"

    def seal(self, plaintext: str, context: str) -> str:
        """Encrypt ``plaintext`` for the field named ``context`` (e.g. ``"identity:phone"``)."""
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{_PREFIX}.{self.key_id}.{body}"

    def open(self, token: str, context: str) -> str:
        """Decrypt what :meth:`seal` made; :class:`~siyu.errors.WrongKeyError` if it cannot."""
        from cryptography.exceptions import InvalidTag

        prefix, key_id, body = _split(token)
        if prefix != _PREFIX:
            raise WrongKeyError(f"a stored {context} value is not in a format this siyu can decrypt")
        if key_id != self.key_id:
            raise WrongKeyError(
                f"a stored {context} value was encrypted under key {key_id}, but this workspace holds key "
                f"{self.key_id}; connect with the key the data was written with (or finish the key rotation)"
            )
        data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        try:
            return str(self._aead.decrypt(data[:12], data[12:], context.encode()).decode())
        except InvalidTag:
            raise WrongKeyError(
                f"a stored {context} value failed its integrity check (tampered with, or moved from "
                "another field); nothing was decrypted"
            ) from None

    def blind(self, kind: str, scope: str, value: str) -> str:
        """The blind index of an identity: equal values give equal digests, nothing else leaks."""
        digest = hmac.new(self._index_key, f"{kind}\x1f{scope}\x1f{value}".encode(), hashlib.sha256)
        return "h1." + digest.hexdigest()[:40]


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(_PREFIX + ".")


def is_blind(value: object) -> bool:
    return isinstance(value, str) and value.startswith("h1.")


def key_id_of(token: str) -> str:
    return _split(token)[1]


def _split(token: str) -> tuple[str, str, str]:
    parts = token.split(".", 2)
    if len(parts) != 3:
        raise WrongKeyError("a stored value is not a sealed siyu value; the database may be damaged")
    return parts[0], parts[1], parts[2]
