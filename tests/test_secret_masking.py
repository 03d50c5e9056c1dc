"""Secrets stay out of logs, reprs and errors: storage URLs with percent-encoded
passwords, and channel secrets masked without mangling the text around them."""

from __future__ import annotations

import pytest

from siyu._text import mask_secrets
from siyu._url import StorageURL


@pytest.mark.parametrize(("url", "masked"), [
    ("postgresql://bob:p%40ss%2Fw@db/shop", "postgresql://bob:***@db/shop"),
    ("postgresql://bob:pw@db:5432/shop?schema=x&password=zz", "postgresql://bob:***@db:5432/shop?schema=x&password=***"),
    ("postgresql://db/shop?PASSWORD=zz&sslmode=require", "postgresql://db/shop?PASSWORD=***&sslmode=require"),
    ("redis://:s3cr%40t@localhost:6379/0", "redis://:***@localhost:6379/0"),
    ("postgresql://bob@db/shop", "postgresql://bob@db/shop"),
    ("sqlite:////var/data/shop.db", "sqlite:////var/data/shop.db"),
    ("memory://", "memory://"),
])
def test_storage_urls_are_masked_however_the_password_is_written(url: str, masked: str) -> None:
    parsed = StorageURL.parse(url)
    assert parsed.masked() == masked
    for secret in ("p%40ss", "p@ss", "s3cr", "zz"):
        assert secret not in repr(parsed)


def test_a_short_secret_is_masked_only_where_it_stands_alone() -> None:
    text = "the a-team said abc, abcdef and 1abc; token=abc"
    assert mask_secrets(text, ["abc"]) == "the a-team said ***, abcdef and 1abc; token=***"


def test_a_long_secret_is_masked_anywhere_and_in_its_percent_encoded_form() -> None:
    secret = "p@ss/w0rd-1234"
    text = f"GET https://api.example/?sig=p%40ss%2Fw0rd-1234 failed; key={secret}; x{secret}y"
    assert mask_secrets(text, [secret, None, ""]) == "GET https://api.example/?sig=*** failed; key=***; x***y"
