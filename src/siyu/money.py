"""Money: yuan as :class:`~decimal.Decimal` in the API, integer fen in storage.

A ``float`` is refused everywhere: ``0.1 + 0.2`` is not ``0.3``, and a price
that is off by a fen is a bug a merchant finds in the accounts months later.
``str`` and ``int`` are accepted and converted exactly.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from .errors import InvalidMoney

__all__ = ["Money", "to_fen", "to_yuan"]

Money = Decimal | int | str

_FEN = Decimal("0.01")
#: Fen are stored in signed 64-bit integers.
_MAX_YUAN = Decimal(2**63 - 1) / 100


def to_fen(amount: object, *, name: str = "amount", allow_negative: bool = False) -> int:
    """Convert yuan (``Decimal``, ``int`` or ``str``) to integer fen.

    >>> to_fen("19.90")
    1990
    """
    if isinstance(amount, bool | float):
        raise InvalidMoney(
            f"{name}={amount!r} is a {type(amount).__name__}; money must be a Decimal, int or str "
            f"(e.g. Decimal('19.90') or '19.90') because floats cannot hold fen exactly"
        )
    if isinstance(amount, Decimal):
        value = amount
    elif isinstance(amount, int | str):
        try:
            value = Decimal(str(amount).strip())
        except InvalidOperation:
            raise InvalidMoney(f"{name}={amount!r} is not a number of yuan such as '19.90'") from None
    else:
        raise InvalidMoney(f"{name} must be a Decimal, int or str of yuan, got {type(amount).__name__}")
    if not value.is_finite():
        raise InvalidMoney(f"{name}={amount!r} is not a finite amount")
    if abs(value) > _MAX_YUAN:
        raise InvalidMoney(f"{name}={amount!r} is larger than siyu can store (at most {_MAX_YUAN} yuan)")
    if value != value.quantize(_FEN):
        raise InvalidMoney(f"{name}={amount!r} has more than two decimal places; round it to the fen")
    if value < 0 and not allow_negative:
        raise InvalidMoney(f"{name}={amount!r} is negative; amounts must be >= 0")
    return int(value * 100)


def to_yuan(fen: int) -> Decimal:
    """Integer fen to yuan as a two-place ``Decimal``."""
    return (Decimal(fen) / 100).quantize(_FEN)
