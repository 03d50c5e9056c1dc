"""Products: SKUs with a price, a cost and a role (引流品, 利润品, 活动品, 裂变品, 关系品, 专属品)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import NotFound, ValidationError
from ..models.commerce import Product, ProductRole
from ..money import Money, to_fen
from ._common import check_many, check_text
from .pricing import LOSS_ROLES

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


#: "Not given" for update() fields where None means "clear".
_KEEP: Any = object()


def _member_prices(prices: Mapping[str, Money] | None) -> dict[str, int]:
    if prices is not None and not isinstance(prices, Mapping):
        raise ValidationError(f"member_prices must be a dict of tier name -> price, got {prices!r}")
    return {check_text(t, "tier name", max_length=32): to_fen(p, name=f"member_prices[{t!r}]")
            for t, p in (prices or {}).items()}


def _margin(value: object) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, float | bool):
        raise ValidationError(f"min_margin={value!r}: give a Decimal or str such as '0.2' (20 %), not a float")
    try:
        margin = Decimal(str(value))
    except InvalidOperation:
        raise ValidationError(f"min_margin={value!r} is not a number such as '0.2'") from None
    if not margin.is_finite() or not Decimal(0) <= margin < Decimal(1):
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
        *positional: object,
        price: Money | None = None,
        cost: Money | None = None,
        role: ProductRole | str = ProductRole.TRAFFIC,
        category: str | None = None,
        min_margin: Decimal | str | None = None,
        member_prices: Mapping[str, Money] | None = None,
        tiers: Iterable[str] = (),
        active: bool = True,
        loss_budget: Money | None = None,
    ) -> Product:
        """Add a product, or replace the one with this SKU:
        ``ws.products.add("TEA", "Oolong", price="128", cost="52", role="profit")``.

        ``price`` and ``cost`` are yuan (``Decimal``, ``int`` or ``str``; a
        float is refused), by keyword only: two positional amounts are one
        typo away from swapped. ``min_margin`` overrides the workspace margin
        floor for this product (a share of the selling price, e.g. ``"0.2"``).
        ``member_prices`` maps tier names to the member price (会员价).
        ``tiers`` lists the tiers allowed to buy an exclusive (专属品) product.

        The price and every member price go through the margin guard: below
        the product's floor (its cost, or cost / (1 - margin floor)) they raise
        :class:`~siyu.errors.PriceBelowFloor`, unless the product is a traffic
        or activity item with a ``loss_budget`` (yuan it may lose selling below
        the floor; orders use it up, then sell at the floor). The live coupons
        and activities are then re-checked: a price cut that lets them sell
        below the floor is refused with :class:`~siyu.errors.MarginViolation`.
        """
        if positional:
            raise ValidationError(
                f"products.add takes the sku and title by position, everything else by keyword: "
                f"ws.products.add({sku!r}, {title!r}, price=..., cost=..., role=...); "
                f"got {len(positional)} more positional argument(s) {list(positional)!r}"
            )
        if price is None or cost is None:
            raise ValidationError(f"product {sku!r} needs price=... and cost=... (yuan, e.g. price='128', cost='52')")
        product = Product(
            sku=check_sku(sku),
            title=check_text(title, "title", max_length=200),
            price_fen=to_fen(price, name="price"),
            cost_fen=to_fen(cost, name="cost"),
            role=check_role(role),
            category=None if category is None else check_text(category, "category", max_length=64),
            min_margin=_margin(min_margin),
            member_prices_fen=_member_prices(member_prices),
            tiers=tuple(sorted({check_text(t, "tier name", max_length=32) for t in tiers})),
            active=bool(active),
            loss_budget_fen=None if loss_budget is None else to_fen(loss_budget, name="loss_budget"),
        )
        return self._save(product)

    def update(
        self,
        sku: str,
        *positional: object,
        price: Money | None = None,
        cost: Money | None = None,
        title: str | None = None,
        role: ProductRole | str | None = None,
        category: object = _KEEP,
        min_margin: object = _KEEP,
        member_prices: Mapping[str, Money] | None = None,
        tiers: Iterable[str] | None = None,
        active: bool | None = None,
        loss_budget: object = _KEEP,
    ) -> Product:
        """Change some fields of a product; the others keep their value
        (``ws.products.update("TEA", price="118")``). Keyword arguments only, as
        for :meth:`add`, and guarded the same way. ``category``, ``min_margin``
        and ``loss_budget`` may be set to ``None`` to clear them. Unknown SKU:
        :class:`~siyu.errors.NotFound`."""
        if positional:
            raise ValidationError(f"products.update takes the sku by position and the fields by keyword: "
                                  f"ws.products.update({sku!r}, price=...); got {list(positional)!r}")
        with self._uow.write() as tx:
            current = self.require(tx, [sku])[check_sku(sku)]
            changes: dict[str, Any] = {}
            if price is not None:
                changes["price_fen"] = to_fen(price, name="price")
            if cost is not None:
                changes["cost_fen"] = to_fen(cost, name="cost")
            if title is not None:
                changes["title"] = check_text(title, "title", max_length=200)
            if role is not None:
                changes["role"] = check_role(role)
            if category is not _KEEP:
                changes["category"] = None if category is None else check_text(category, "category", max_length=64)
            if min_margin is not _KEEP:
                changes["min_margin"] = _margin(min_margin)
            if member_prices is not None:
                changes["member_prices_fen"] = _member_prices(member_prices)
            if tiers is not None:
                names = check_many(tiers, "tiers", "['gold', 'platinum']")
                changes["tiers"] = tuple(sorted({check_text(t, "tier name", max_length=32) for t in names}))
            if active is not None:
                changes["active"] = bool(active)
            if loss_budget is not _KEEP:
                changes["loss_budget_fen"] = None if loss_budget is None else to_fen(loss_budget,  # type: ignore[arg-type]
                                                                                    name="loss_budget")
            return self._save(attrs.evolve(current, **changes), tx)

    def _save(self, product: Product, tx: Transaction | None = None) -> Product:
        if product.tiers and product.role is not ProductRole.EXCLUSIVE:
            raise ValidationError(
                f"product {product.sku!r}: tiers=... restricts who may buy it, which only exclusive "
                "products (role=ProductRole.EXCLUSIVE, 专属品) do; drop tiers or change the role"
            )
        if product.loss_budget_fen is not None and product.role not in LOSS_ROLES:
            raise ValidationError(
                f"product {product.sku!r} ({product.role.value}): only traffic and activity products may have a "
                "loss_budget (sell below their floor); drop loss_budget or change the role"
            )
        if tx is None:
            with self._uow.write() as own:
                return self._save(product, own)
        tx.products.save(product, self._uow.now())
        self._pricing.guard_product(tx, product)
        tx.meta.bump("products")
        tx.meta.bump("commerce")  # the pricing catalogue caches products: quotes must see the new price
        found = tx.products.get_many([product.sku])[product.sku]
        return found

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
                           else "") + "; add it first with ws.products.add(sku, title, price=..., cost=..., role=...)")
        return found
