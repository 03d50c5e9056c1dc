"""Products: SKUs with a price, a cost and a role (the six roles of seed 000)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from ..errors import NotFound, ValidationError
from ..models.commerce import Product, ProductRole
from ..money import Money, to_fen
from ._common import check_text

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..storage.base import Transaction
    from .promotions import Promotions

__all__ = ["Products", "check_role", "check_sku"]


def check_sku(value: object) -> str:
    return check_text(value, "sku", max_length=64)


def check_role(value: object) -> ProductRole:
    if isinstance(value, ProductRole):
        return value
    try:
        return ProductRole(str(value))
    except ValueError:
        names = ", ".join(r.value for r in ProductRole)
        raise ValidationError(f"role {value!r} is not a product role; use ProductRole.X or one of {names}") from None


def _margin(value: object) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, float | bool):
        raise ValidationError(f"min_margin={value!r}: give a Decimal or str such as '0.2' (20 %), not a float")
    try:
        margin = Decimal(str(value))
    except InvalidOperation:
        raise ValidationError(f"min_margin={value!r} is not a number such as '0.2'") from None
    if not Decimal(0) <= margin < Decimal(1):
        raise ValidationError(f"min_margin={value!r} must be in [0, 1): the share of the price kept as margin")
    return margin


class Products:
    """``ws.products``: the catalogue. Every order line names a SKU added here."""

    def __init__(self, uow: UnitOfWork, *, pricing: Promotions) -> None:
        self._uow = uow
        self._pricing = pricing

    def add(
        self,
        sku: str,
        title: str,
        price: Money,
        cost: Money,
        role: ProductRole | str = ProductRole.TRAFFIC,
        category: str | None = None,
        *,
        min_margin: Decimal | str | None = None,
        member_prices: Mapping[str, Money] | None = None,
        tiers: Iterable[str] = (),
        active: bool = True,
    ) -> Product:
        """Add a product, or replace the one with this SKU.

        ``price`` and ``cost`` are yuan (``Decimal``, ``int`` or ``str``; a
        float is refused). ``min_margin`` overrides the workspace margin
        floor for this product (a share of the selling price, e.g. ``"0.2"``).
        ``member_prices`` maps tier names to the member price (会员价).
        ``tiers`` lists the tiers allowed to buy an exclusive (专属品) product.

        Re-adding a product runs the margin guard over the live coupons and
        activities: a price cut that lets them sell below the floor is refused
        with :class:`~siyu.errors.MarginViolation`.
        """
        product = Product(
            sku=check_sku(sku),
            title=check_text(title, "title", max_length=200),
            price_fen=to_fen(price, name="price"),
            cost_fen=to_fen(cost, name="cost"),
            role=check_role(role),
            category=None if category is None else check_text(category, "category", max_length=64),
            min_margin=_margin(min_margin),
            member_prices_fen={
                check_text(t, "tier name", max_length=32): to_fen(p, name=f"member_prices[{t!r}]")
                for t, p in (member_prices or {}).items()
            },
            tiers=tuple(sorted({check_text(t, "tier name", max_length=32) for t in tiers})),
            active=bool(active),
        )
        if product.tiers and product.role is not ProductRole.EXCLUSIVE:
            raise ValidationError(
                f"product {product.sku!r}: tiers=... restricts who may buy it, which only exclusive "
                "products (role=ProductRole.EXCLUSIVE, 专属品) do; drop tiers or change the role"
            )
        with self._uow.write() as tx:
            tx.products.save(product, self._uow.now())
            self._pricing.guard_product(tx, product)
            tx.meta.bump("products")
        return product

    def get(self, sku: str) -> Product:
        """The product with this SKU; :class:`~siyu.errors.NotFound` if none."""
        with self._uow.read() as tx:
            return self.require(tx, [sku])[check_sku(sku)]

    def all(self) -> list[Product]:
        """Every product, by SKU."""
        with self._uow.read() as tx:
            return tx.products.all()

    def by_role(self, role: ProductRole | str) -> list[Product]:
        """Products of one role (e.g. the traffic items for a lead-in campaign)."""
        wanted = check_role(role)
        return [p for p in self.all() if p.role is wanted]

    @staticmethod
    def require(tx: Transaction, skus: Iterable[str]) -> dict[str, Product]:
        """Products for ``skus``; an unknown SKU raises NotFound naming it."""
        wanted = sorted({check_sku(s) for s in skus})
        found = tx.products.get_many(wanted)
        missing = [s for s in wanted if s not in found]
        if missing:
            raise NotFound(f"unknown sku {missing[0]!r}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1
                           else "") + "; add it first with ws.products.add(sku, title, price, cost, role=...)")
        return found
