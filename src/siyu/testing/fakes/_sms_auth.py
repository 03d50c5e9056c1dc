"""The request checks the SMS providers' API gateways make before any action runs.

Written independently of ``siyu.channels.sms.signing`` (a fake that reused the
signer it tests would agree with any bug in it), and as strict as the
providers: each rule cites where it comes from. A check answers ``None``
(accepted) or a :class:`Refusal` with the provider's error code.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from urllib.parse import quote

import attrs

from ._server import Clock, Request, unix_time

__all__ = ["Acs3Gate", "Refusal", "Tc3Gate"]


@attrs.frozen
class Refusal:
    code: str
    message: str
    status: int = 400


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


# -- Tencent Cloud API 3.0 (TC3-HMAC-SHA256) ---------------------------------------------

_TC3_AUTH = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<id>[^/,\s]+)/(?P<date>[^/]*)/(?P<service>[^/]*)/tc3_request, "
    r"SignedHeaders=(?P<signed>[^,\s]+), Signature=(?P<signature>[0-9a-f]{64})"
)


class Tc3Gate:
    """Tencent Cloud's checks of an API 3.0 POST (channels.md §3.4-3.5)."""

    #: channels.md §3.5: "timestamp skew >5 minutes → AuthFailure.SignatureExpire".
    max_skew = 300

    def __init__(
        self, keys: Mapping[str, str], *, service: str, version: str, actions: Collection[str], clock: Clock | None
    ) -> None:
        self.keys, self.service, self.version, self.actions, self.clock = keys, service, version, actions, clock

    def check(self, request: Request) -> Refusal | None:
        headers = request.headers
        # Tencent's "request structure" page: a POST is application/json (signature v3) or
        # multipart/form-data (a few upload APIs); form-encoding needs the v1 signature and
        # anything else is refused. The exact code for this case is not documented.
        content_type = headers.get("content-type", "")
        if content_type.partition(";")[0].strip().lower() != "application/json":
            return Refusal("InvalidParameter", f"Content-Type {content_type!r} is not supported; use application/json")
        # X-TC-Action, X-TC-Version and X-TC-Timestamp are required common parameters
        # (channels.md §3.4); a missing one is the common error MissingParameter.
        for name in ("X-TC-Action", "X-TC-Version", "X-TC-Timestamp"):
            if not headers.get(name.lower()):
                return Refusal("MissingParameter", f"The request is missing a required parameter `{name}`.")
        if headers["x-tc-version"] != self.version:
            return Refusal("NoSuchVersion", f"The API version `{headers['x-tc-version']}` does not exist.")
        if headers["x-tc-action"] not in self.actions:
            return Refusal("InvalidAction", f"The API `{headers['x-tc-action']}` does not exist.")
        stamp = headers["x-tc-timestamp"]
        if not re.fullmatch(r"[0-9]{1,12}", stamp):
            return Refusal("InvalidParameterValue", f"X-TC-Timestamp {stamp!r} is not Unix seconds")
        if abs(unix_time(self.clock) - int(stamp)) > self.max_skew:
            return Refusal(
                "AuthFailure.SignatureExpire",
                "Signature expired. Timestamp and server time cannot differ by more than five minutes.",
            )
        match = _TC3_AUTH.fullmatch(headers.get("authorization", ""))
        if match is None:
            return Refusal("AuthFailure.InvalidAuthorization", "Authorization in the request header is invalid.")
        secret_key = self.keys.get(match["id"])
        if secret_key is None:
            return Refusal("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        # "Sign at least content-type and host" (channels.md §3.5); others may be added.
        signed = match["signed"].split(";")
        if not {"content-type", "host"} <= set(signed) or any(name not in headers for name in signed):
            return Refusal("AuthFailure.InvalidAuthorization", "SignedHeaders must name content-type, host.")
        # The server derives the credential date from X-TC-Timestamp in UTC and the service
        # from its own product (`sms`), so a scope with another date or service (the `cvm`
        # of the published example) cannot match (channels.md §3.5 step 2).
        date = datetime.fromtimestamp(int(stamp), UTC).strftime("%Y-%m-%d")
        if (match["date"], match["service"]) != (date, self.service) or not hmac.compare_digest(
            match["signature"], self._signature(request, secret_key, signed, stamp, date)
        ):
            return Refusal(
                "AuthFailure.SignatureFailure",
                "The provided credentials could not be validated. Please check your signature is correct.",
            )
        return None

    def _signature(self, request: Request, secret_key: str, signed: list[str], stamp: str, date: str) -> str:
        # Canonical headers: names and values lower-cased and trimmed, sorted by name
        # (Tencent's signature v3 page; its own example signs `x-tc-action:describeinstances`).
        names = sorted(signed)
        canonical_headers = "".join(f"{n}:{request.headers[n].strip().lower()}\n" for n in names)
        canonical = "\n".join(["POST", "/", "", canonical_headers, ";".join(names), _sha256(request.body)])
        scope = f"{date}/{self.service}/tc3_request"
        to_sign = "\n".join(["TC3-HMAC-SHA256", stamp, scope, _sha256(canonical.encode("utf-8"))])
        key = _hmac(_hmac(_hmac(("TC3" + secret_key).encode("utf-8"), date), self.service), "tc3_request")
        return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


# -- Alibaba Cloud V3 (ACS3-HMAC-SHA256) --------------------------------------------------

_ACS3_AUTH = re.compile(
    r"ACS3-HMAC-SHA256 Credential=(?P<id>[^,\s]+),SignedHeaders=(?P<signed>[^,\s]+),"
    r"Signature=(?P<signature>[0-9a-f]{64})"
)
_ACS_REQUIRED = ("host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256")


def _percent(value: str) -> str:
    return quote(value, safe="-_.~")


class Acs3Gate:
    """Alibaba Cloud's checks of an ACS3-HMAC-SHA256 request (channels.md §3.3)."""

    #: channels.md §3.3: x-acs-date "must be within 15 minutes of server time".
    max_skew = 15 * 60

    def __init__(self, keys: Mapping[str, str], *, clock: Clock | None) -> None:
        self.keys, self.clock = keys, clock
        self._nonces: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, request: Request) -> Refusal | None:
        headers = request.headers
        match = _ACS3_AUTH.fullmatch(headers.get("authorization", ""))
        if match is None:
            return Refusal("IncompleteSignature", "The request signature does not conform to Aliyun standards.")
        secret = self.keys.get(match["id"])
        if secret is None:
            return Refusal("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        missing = [name for name in _ACS_REQUIRED if not headers.get(name)]
        if missing:
            return Refusal("IncompleteSignature", f"The request lacks the header(s) {', '.join(missing)}.")
        # "除Authorization外的所有公共请求头，只要存在必须被加入签名" (Alibaba's V3 signature page):
        # host and every x-acs-* header (content-type too when sent) must be signed; any other
        # header may be, e.g. user-agent, which Alibaba's own SDK signs.
        signed = match["signed"].split(";")
        must = [n for n in headers if n in ("host", "content-type") or n.startswith("x-acs-")]
        unsigned = [n for n in must if n not in signed]
        if unsigned or any(n not in headers for n in signed) or signed != sorted(set(signed)):
            return Refusal(
                "IncompleteSignature",
                f"SignedHeaders must list, sorted, every sent host/x-acs-*/content-type header (unsigned: {unsigned}).",
            )
        try:
            sent = datetime.strptime(headers["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            return Refusal("InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
        now = unix_time(self.clock)
        if abs(now - sent) > self.max_skew:
            return Refusal("InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        # HashedRequestPayload is the hash of the body received; a header that does not
        # match it is refused (channels.md §3.3: x-acs-content-sha256 = SHA-256 of the body).
        if headers["x-acs-content-sha256"] != _sha256(request.body):
            return Refusal("SignatureDoesNotMatch", "x-acs-content-sha256 does not match the request body.")
        if not hmac.compare_digest(match["signature"], self._signature(request, secret, signed)):
            return Refusal("SignatureDoesNotMatch", "Specified signature does not match our calculation.")
        # x-acs-signature-nonce: "签名唯一随机数。用于防止网络重放攻击" — a nonce is good for one
        # request; it is remembered as long as its request's date is inside the window.
        nonce = headers["x-acs-signature-nonce"]
        with self._lock:
            self._nonces = {n: t for n, t in self._nonces.items() if t >= now}
            if nonce in self._nonces:
                return Refusal("SignatureNonceUsed", "Specified signature nonce was used already.")
            self._nonces[nonce] = sent + self.max_skew
        return None

    @staticmethod
    def _signature(request: Request, secret: str, signed: list[str]) -> str:
        query = "&".join(f"{_percent(k)}={_percent(v)}" for k, v in sorted(request.query.items()))
        canonical_headers = "".join(f"{n}:{request.headers[n].strip()}\n" for n in signed)
        canonical = "\n".join(
            [
                request.method,
                request.path or "/",
                query,
                canonical_headers,
                ";".join(signed),
                request.headers["x-acs-content-sha256"],
            ]
        )
        to_sign = "ACS3-HMAC-SHA256\n" + _sha256(canonical.encode("utf-8"))
        return hmac.new(secret.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
