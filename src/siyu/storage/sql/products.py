"""Products in SQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..._clock import to_us
from ...models.commerce import Product, ProductRole
from ..contracts.commerce import ProductStore

if TYPE_CHECKING:
    from .backend import SqlTransaction

_COLS = "sku, title, price, cost, role, category, min_margin, active, member_prices, tiers, loss_budget"


def _product(row: Sequence[Any]) -> Product:
    return Product(
        sku=row[0],
        title=row[1],
        price_fen=int(row[2]),
        cost_fen=int(row[3]),
        role=ProductRole(row[4]),
        category=row[5],
        min_margin=None if row[6] is None else Decimal(row[6]),
        active=bool(row[7]),
        member_prices_fen={k: int(v) for k, v in json.loads(row[8]).items()},
        tiers=tuple(json.loads(row[9])),
        loss_budget_fen=None if row[10] is None else int(row[10]),
        loss_used_fen=int(row[11]),
    )


class SqlProductStore(ProductStore):
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def save(self, product: Product, at: datetime) -> None:
        self.tx.execute(
            # What orders used of the loss budget is theirs: replacing the product keeps it.
            f"INSERT INTO products ({_COLS}, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (sku) DO UPDATE SET title = excluded.title, price = excluded.price, cost = excluded.cost, "
            "role = excluded.role, category = excluded.category, min_margin = excluded.min_margin, "
            "active = excluded.active, member_prices = excluded.member_prices, tiers = excluded.tiers, "
            "loss_budget = excluded.loss_budget, updated_at = excluded.updated_at",
            (
                product.sku,
                product.title,
                product.price_fen,
                product.cost_fen,
                product.role.value,
                product.category,
                None if product.min_margin is None else str(product.min_margin),
                int(product.active),
                json.dumps(product.member_prices_fen, sort_keys=True),
                json.dumps(list(product.tiers)),
                product.loss_budget_fen,
                to_us(at),
            ),
        )

    def get_many(self, skus: Sequence[str]) -> dict[str, Product]:
        found: dict[str, Product] = {}
        for marks, chunk in self.tx.in_chunks(sorted(set(skus))):
            for row in self.tx.execute(f"SELECT {_COLS}, loss_used FROM products WHERE sku IN ({marks})", chunk):
                found[row[0]] = _product(row)
        return found

    def all(self) -> list[Product]:
        return [_product(r) for r in self.tx.execute(f"SELECT {_COLS}, loss_used FROM products ORDER BY sku")]

    def use_loss_budget(self, used: Sequence[tuple[str, int]]) -> None:
        self.tx.executemany("UPDATE products SET loss_used = loss_used + ? WHERE sku = ?",
                            [(fen, sku) for sku, fen in used if fen])
