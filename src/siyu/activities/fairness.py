"""Randomness anyone can check: HMAC-SHA256 of a committed seed, mapped without bias.

A server seed is drawn with :mod:`secrets`; its SHA-256 (the *commitment*)
is published before anything depends on it, and the seed itself afterwards.
Every random value is then ``HMAC-SHA256(seed, message)`` for a message that
names what it decides (``"draw:7:user:42:seq:3"``), so anybody holding the
revealed seed can recompute every outcome, and nobody could have chosen the
seed after seeing who would play. Values are turned into numbers in a range
by rejection sampling, never by a bare modulo, so no outcome is favoured.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["commitment", "cut_sequence", "new_seed", "pick", "uniform_below"]

_SPAN = 1 << 64


def new_seed() -> str:
    """A fresh secret seed: 32 random bytes as hex."""
    return secrets.token_hex(32)


def commitment(seed: str) -> str:
    """The SHA-256 of ``seed`` (hex), published before the seed is used."""
    return hashlib.sha256(seed.encode()).hexdigest()


def uniform_below(seed: str, message: str, n: int) -> int:
    """A number in ``[0, n)`` decided by ``(seed, message)`` alone, every value equally likely.

    64-bit blocks of ``HMAC-SHA256(seed, f"{message}:{counter}")`` are tried in
    turn; a block at or above the largest multiple of ``n`` is rejected (the
    chance of that is below n / 2**64), so the result has no modulo bias."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    limit = _SPAN - _SPAN % n
    counter = 0
    while True:
        digest = hmac.new(seed.encode(), f"{message}:{counter}".encode(), hashlib.sha256).digest()
        for start in range(0, 32, 8):
            block = int.from_bytes(digest[start:start + 8], "big")
            if block < limit:
                return block % n
        counter += 1


def cut_sequence(total_fen: int, helps: int, seed: str) -> list[int]:
    """How ``helps`` helpers cut ``total_fen`` off a bargain: each cut at least
    1 fen, together exactly ``total_fen``, reproducible from ``seed``.

    Every helper still to come keeps 1 fen in reserve; each cut but the last
    takes 1 fen plus 20-80 % of what is left above the reserves, and the last
    takes exactly what remains, landing on the floor price."""
    if helps < 1 or total_fen < helps:
        raise ValueError(f"{helps} helps cannot each cut at least 1 fen off {total_fen} fen")
    cuts: list[int] = []
    spare = total_fen - helps  # what is left above one fen per helper
    for n in range(helps - 1):
        percent = 20 + uniform_below(seed, f"cut:{n}", 61)
        extra = spare * percent // 100
        cuts.append(1 + extra)
        spare -= extra
    cuts.append(1 + spare)
    return cuts


def pick(seed: str, message: str, weights: list[int]) -> int:
    """The index of ``weights`` chosen by ``(seed, message)``, each with
    probability ``weight / sum(weights)`` exactly (zero weights never chosen).

    A number below the total weight is drawn by :func:`uniform_below` and the
    bucket it falls in is the outcome: every value lands in exactly one
    bucket, so a draw can never fail for lack of one."""
    total = sum(weights)
    if total <= 0 or min(weights) < 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {weights}")
    roll = uniform_below(seed, message, total)
    for index, weight in enumerate(weights):
        if roll < weight:
            return index
        roll -= weight
    raise AssertionError("unreachable: roll < total")
