"""Storage: the backend contract and the built-in SQL backends."""

from .base import Backend, Capability, Transaction

__all__ = ["Backend", "Capability", "Transaction"]
