"""The WXBizMsgCrypt scheme of WeCom (and WeChat) callbacks.

AES-256-CBC with ``IV = key[:16]``, PKCS#7 padding to **32** bytes, plaintext
``random(16) ‖ msg_len (uint32 BE) ‖ msg ‖ receiveid``, Base64, and a SHA-1
signature over the sorted ``token, timestamp, nonce, encrypt``. Every check
the official samples skip is done here: constant-time signature comparison,
strict padding (1..32, all bytes equal), ``msg_len`` bounds, receiveid.

Errors are :class:`~siyu.errors.CallbackRejected` with the official numeric
code (``-40001`` signature, ``-40005`` receiveid, ``-40007`` decrypt,
``-40008`` buffer, ``-40010`` Base64, ``-40002`` XML); a bad EncodingAESKey
is a :class:`~siyu.errors.ValidationError` (``-40004``) at construction.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...errors import CallbackRejected, ValidationError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

__all__ = ["WXBizMsgCrypt", "parse_xml", "signature"]

BLOCK = 32

VALIDATE_SIGNATURE = -40001
PARSE_XML = -40002
ILLEGAL_AES_KEY = -40004
VALIDATE_RECEIVEID = -40005
DECRYPT_AES = -40007
ILLEGAL_BUFFER = -40008
DECODE_BASE64 = -40010


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """``lowercase_hex(SHA1(concat(sorted([token, timestamp, nonce, encrypt]))))``."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode("utf-8")).hexdigest()


def signatures_equal(expected: str, given: str) -> bool:
    """Constant-time comparison of two signatures."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def parse_xml(text: str | bytes) -> dict[str, str]:
    """Flat ``{tag: text}`` of a callback XML document, parsed with defusedxml
    (DTDs and entity expansion are refused)."""
    try:
        from defusedxml import ElementTree
        from defusedxml.common import DefusedXmlException
    except ImportError:  # pragma: no cover
        raise ValidationError("WeCom callbacks need defusedxml: pip install 'siyu[channels]'") from None
    try:
        root = ElementTree.fromstring(text, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise CallbackRejected(f"callback XML refused: {type(exc).__name__} (DTD/entities)", code=PARSE_XML) from None
    except Exception as exc:  # ParseError and friends: malformed input
        raise CallbackRejected(f"callback XML does not parse: {exc}", code=PARSE_XML) from None
    # A list (<MemChangeList><Item>a</Item><Item>b</Item></MemChangeList>) reads as "a,b",
    # the same as the older comma-separated CDATA form of the same field.
    return {child.tag: (child.text or "").strip() if len(child) == 0 or (child.text or "").strip()
            else ",".join((item.text or "").strip() for item in child) for child in root}


class WXBizMsgCrypt:
    """Encrypt, decrypt and sign WeCom callback messages.

    ``token`` and ``encoding_aes_key`` come from the admin console's callback
    settings; ``receiveid`` is the corp id (own apps), the suite id
    (third-party suites) or the appid (WeChat mini-program / official account).
    ``random`` returns the 16 random prefix bytes (tests inject a fixed value).
    """

    def __init__(
        self,
        token: str,
        encoding_aes_key: str,
        receiveid: str,
        *,
        random: Callable[[], bytes] | None = None,
    ) -> None:
        if not isinstance(token, str) or not token:
            raise ValidationError("WeCom callback token is empty; copy it from the admin console's callback settings")
        if not isinstance(encoding_aes_key, str) or len(encoding_aes_key) != 43:
            raise ValidationError(
                f"EncodingAESKey must be 43 characters (got {len(encoding_aes_key) if isinstance(encoding_aes_key, str) else type(encoding_aes_key).__name__}); "  # noqa: E501
                "copy it from the admin console's callback settings (error -40004)"
            )
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError(
                "EncodingAESKey is not Base64 (error -40004); copy it again from the console"
            ) from None
        if len(key) != 32:
            raise ValidationError("EncodingAESKey does not decode to 32 bytes (error -40004)")
        self.token = token
        self.receiveid = receiveid
        self._key = key
        self._random = random or (lambda: os.urandom(16))

    def __repr__(self) -> str:
        return f"<WXBizMsgCrypt receiveid={self.receiveid!r} token=*** key=***>"

    # -- primitives ----------------------------------------------------------------------
    def _cipher(self) -> Cipher[modes.CBC]:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def encrypt(self, text: str) -> str:
        """Base64 ciphertext of ``text`` (the ``Encrypt`` field)."""
        msg = text.encode("utf-8")
        prefix = self._random()
        if len(prefix) != 16:
            raise ValueError("the random prefix must be 16 bytes")
        plain = prefix + struct.pack(">I", len(msg)) + msg + self.receiveid.encode("utf-8")
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")

    def decrypt(self, encrypt: str) -> str:
        """Plaintext of an ``Encrypt`` value (the signature must be checked first)."""
        try:
            data = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise CallbackRejected("Encrypt is not valid Base64", code=DECODE_BASE64) from None
        if not data or len(data) % BLOCK:
            raise CallbackRejected(
                f"ciphertext length {len(data)} is not a positive multiple of {BLOCK}", code=DECRYPT_AES
            )
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise CallbackRejected("decrypted buffer has invalid padding", code=ILLEGAL_BUFFER)
        plain = plain[:-pad]
        if len(plain) < 20:
            raise CallbackRejected("decrypted buffer is too short", code=ILLEGAL_BUFFER)
        (length,) = struct.unpack(">I", plain[16:20])
        if 20 + length > len(plain):
            raise CallbackRejected("msg_len exceeds the decrypted buffer", code=ILLEGAL_BUFFER)
        msg, receiveid = plain[20 : 20 + length], plain[20 + length :]
        if not hmac.compare_digest(receiveid, self.receiveid.encode("utf-8")):
            raise CallbackRejected(
                "receiveid in the message does not match this app's (wrong corp id / suite id)",
                code=VALIDATE_RECEIVEID,
            )
        try:
            return msg.decode("utf-8")
        except UnicodeDecodeError:
            raise CallbackRejected("decrypted message is not UTF-8", code=ILLEGAL_BUFFER) from None

    def check_signature(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        expected = signature(self.token, timestamp, nonce, encrypt)
        if not signatures_equal(expected, msg_signature or ""):
            raise CallbackRejected(
                "msg_signature does not match (wrong token, or a tampered request)", code=VALIDATE_SIGNATURE
            )

    # -- the protocol --------------------------------------------------------------------
    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """URL verification (GET): check the signature, return the plaintext to echo."""
        self.check_signature(msg_signature, timestamp, nonce, echostr)
        return self.decrypt(echostr)

    def decrypt_message(self, msg_signature: str, timestamp: str, nonce: str, body: str | bytes) -> str:
        """Event delivery (POST): the decrypted inner XML of the envelope ``body``."""
        envelope = parse_xml(body)
        encrypt = envelope.get("Encrypt")
        if not encrypt:
            raise CallbackRejected("callback envelope has no Encrypt element", code=PARSE_XML)
        self.check_signature(msg_signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def encrypt_message(self, reply: str, nonce: str, timestamp: str | None = None) -> str:
        """The passive-reply envelope for ``reply``."""
        stamp = timestamp or str(int(time.time()))
        encrypt = self.encrypt(reply)
        sig = signature(self.token, stamp, nonce, encrypt)
        return (
            "<xml>\n"
            f"<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n"
            f"<MsgSignature><![CDATA[{sig}]]></MsgSignature>\n"
            f"<TimeStamp>{stamp}</TimeStamp>\n"
            f"<Nonce><![CDATA[{nonce}]]></Nonce>\n"
            "</xml>"
        )
