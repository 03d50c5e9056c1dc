"""The public surface: one curated, sorted __all__ per public module."""

from __future__ import annotations

import siyu
import siyu.errors
import siyu.events


def test_all_is_sorted_and_complete() -> None:
    assert siyu.__all__ == sorted(siyu.__all__, key=str.lower) or siyu.__all__ == sorted(siyu.__all__)
    for name in siyu.__all__:
        assert hasattr(siyu, name), name


def test_every_error_derives_from_siyu_error() -> None:
    for name in siyu.errors.__all__:
        cls = getattr(siyu.errors, name)
        assert issubclass(cls, siyu.errors.SiyuError), name
        assert name in (siyu.errors.__doc__ or ""), f"{name} is missing from the tree in the errors docstring"


def test_events_are_frozen() -> None:
    import attrs

    for name in siyu.events.__all__:
        cls = getattr(siyu.events, name)
        if attrs.has(cls):
            assert cls.__setattr__ is not object.__setattr__, f"{name} must be frozen"
