"""Parsing storage URLs into an immutable value."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

import attrs

from .errors import ValidationError


@attrs.frozen
class StorageURL:
    """A parsed storage URL such as ``sqlite:///shop.db`` or ``postgresql://u@h/db``.

    ``path`` is the part after ``//host``; for ``sqlite:///shop.db`` it is
    ``shop.db`` (relative) and for ``sqlite:////abs/shop.db`` ``/abs/shop.db``.
    """

    raw: str = attrs.field(repr=False)
    scheme: str
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    path: str = ""
    query: tuple[tuple[str, str], ...] = attrs.field(
        default=(), repr=lambda q: repr(tuple((k, "***" if k.lower() == "password" else v) for k, v in q))
    )

    @classmethod
    def parse(cls, url: str) -> StorageURL:
        if not isinstance(url, str) or "://" not in url:
            raise ValidationError(
                f"storage URL {url!r} is not a URL; use e.g. 'sqlite:///shop.db', 'memory://' "
                "or 'postgresql://user@localhost/db'"
            )
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        path = unquote(parts.path)
        if path.startswith("/"):
            path = path[1:]
        try:
            port = parts.port
        except ValueError as exc:
            raise ValidationError(f"storage URL {url!r} has an invalid port") from exc
        return cls(
            raw=url,
            scheme=scheme,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            host=parts.hostname,
            port=port,
            path=path,
            query=tuple(parse_qsl(parts.query)),
        )

    def param(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return default

    def masked(self) -> str:
        """The URL with any password replaced by ``***`` (for logs and errors): the one
        in the user part, however it is percent-encoded, and a ``password=`` parameter."""
        # Edited in place (not rebuilt with urlunsplit, which would turn sqlite://// into sqlite://).
        masked = self.raw
        parts = urlsplit(self.raw)
        userinfo, at, hostport = parts.netloc.rpartition("@")
        if at and ":" in userinfo:
            masked = masked.replace(f"//{parts.netloc}", f"//{userinfo.split(':', 1)[0]}:***@{hostport}", 1)
        if parts.query:
            query = "&".join(_mask_param(item) for item in parts.query.split("&"))
            masked = masked.replace(f"?{parts.query}", f"?{query}", 1)
        return masked


def _mask_param(item: str) -> str:
    name = item.split("=", 1)[0]
    return f"{name}=***" if unquote(name).lower() == "password" else item
