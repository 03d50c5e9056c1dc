"""Request signing for the SMS providers, pinned by their published vectors.

* Alibaba Cloud RPC signature V2 (HMAC-SHA1) — :func:`aliyun_v2_signature`
* Alibaba Cloud V3 ``ACS3-HMAC-SHA256`` — :func:`aliyun_v3_authorization`
* Tencent Cloud ``TC3-HMAC-SHA256`` — :func:`tc3_authorization`

Signers hash exactly the bytes that are sent; never re-serialise a body
after signing it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

__all__ = [
    "aliyun_v2_signature",
    "aliyun_v3_authorization",
    "aliyun_v3_canonical_request",
    "percent_encode",
    "tc3_authorization",
    "tc3_canonical_request",
]


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Alibaba wants it: keep ``A-Za-z0-9-_.~``, ``%20`` for space."""
    return quote(value, safe="-_.~")


def canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))


def aliyun_v2_signature(secret: str, params: Mapping[str, str], method: str = "GET") -> str:
    """Base64 HMAC-SHA1 of ``METHOD&%2F&pe(canonical query)`` with key ``secret + "&"``."""
    string_to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"
    digest = hmac.new((secret + "&").encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def aliyun_v3_canonical_request(
    method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
) -> tuple[str, str]:
    """``(canonical request, signed headers)``; signs ``host``, ``x-acs-*`` and ``content-type``."""
    signed = {
        k.lower(): str(v).strip()
        for k, v in headers.items()
        if k.lower() in ("host", "content-type") or k.lower().startswith("x-acs-")
    }
    names = sorted(signed)
    canonical_headers = "".join(f"{n}:{signed[n]}\n" for n in names)
    signed_headers = ";".join(names)
    payload_hash = hashlib.sha256(body).hexdigest()
    request = "\n".join([method, path or "/", canonical_query(query), canonical_headers, signed_headers, payload_hash])
    return request, signed_headers


def aliyun_v3_authorization(
    key_id: str,
    secret: str,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes = b"",
) -> str:
    """The ``Authorization`` header value of an ACS3-HMAC-SHA256 request."""
    canonical, signed_headers = aliyun_v3_canonical_request(method, path, query, headers, body)
    string_to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    signature = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    return f"ACS3-HMAC-SHA256 Credential={key_id},SignedHeaders={signed_headers},Signature={signature}"


def tc3_canonical_request(host: str, content_type: str, body: bytes, method: str = "POST") -> str:
    # Tencent lower-cases header values as well as names before comparing
    # (its own example signs "x-tc-action:describeinstances"), so a host
    # written in capitals must be signed in lower case.
    content_type, host = content_type.strip().lower(), host.strip().lower()
    return "\n".join(
        [
            method,
            "/",
            "",
            f"content-type:{content_type}\nhost:{host}\n",
            "content-type;host",
            hashlib.sha256(body).hexdigest(),
        ]
    )


def _hmac256(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def tc3_authorization(
    secret_id: str,
    secret_key: str,
    *,
    host: str,
    service: str,
    timestamp: int,
    body: bytes,
    content_type: str = "application/json; charset=utf-8",
) -> str:
    """The ``Authorization`` header of a TC3-HMAC-SHA256 request. The credential
    date is the **UTC** date of ``timestamp``."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{service}/tc3_request"
    canonical = tc3_canonical_request(host, content_type, body)
    string_to_sign = "\n".join(
        ["TC3-HMAC-SHA256", str(timestamp), scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac256(_hmac256(_hmac256(("TC3" + secret_key).encode(), date), service), "tc3_request")
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders=content-type;host, Signature={signature}"
