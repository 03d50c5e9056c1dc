"""The per-activity report, from the API and from ``siyu report activities``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

import siyu
from siyu.cli import cli
from siyu.testing import FakeClock

START = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
RULES = {k: "stated" for k in ("organizer", "contact", "participation", "claim", "delivery", "forfeit", "terms")}


def _shop(url: str) -> None:
    clock = FakeClock(START - timedelta(days=1))
    with siyu.connect(url, clock=clock) as ws:
        ws.products.add("TEA", "Oolong", price="128", cost="52", role="activity")
        ws.products.add("POT", "Teapot", price="199", cost="60", role="activity")
        old = ws.users.add(phone="+8613800138000").id  # a customer from before the activities
        clock.now = START
        sale = ws.flash_sales.create(sku="TEA", price="69", stock=10, starts_at=START,
                                     ends_at=START + timedelta(days=1))
        buyer = ws.users.add(phone="+8613800138001").id
        for uid, key in ((old, "a"), (buyer, "b")):
            ws.flash_sales.pay(ws.flash_sales.reserve(sale.id, uid, key=key).id)
        bargain = ws.bargains.create(sku="POT", floor="99", helpers=2, stock=5, starts_at=START,
                                     ends_at=START + timedelta(days=1))
        attempt = ws.bargains.start(bargain.id, old)
        for n in (2, 3):
            ws.bargains.help(attempt.id, ws.users.add(phone=f"+861380013800{n}").id)
        ws.bargains.buy(attempt.id)
        draw = ws.draws.create("d", starts_at=START, ends_at=START + timedelta(days=1), rules=RULES, prizes=[
            {"name": "top", "kind": "points", "weight": 1, "points": 5, "value": "2", "stock": 1}],
            exhausted="redraw")
        ws.draws.publish(draw.id)
        ws.draws.draw(draw.id, buyer, key="one")


def test_report_counts_people_units_money_and_new_users(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    _shop(url)
    with siyu.connect(url, clock=FakeClock(START)) as ws:
        rows = {row["kind"]: row for row in ws.activities.report().as_dicts()}
    assert rows["flash_sale"] | {"name": ""} == {
        "kind": "flash_sale", "id": 1, "name": "", "participants": 2, "helpers": 0, "completions": 2, "units": 2,
        "gmv": Decimal("138.00"), "discount": Decimal("118.00"), "prize_cost": Decimal("0.00"), "new_users": 1}
    assert (rows["bargain"]["participants"], rows["bargain"]["helpers"], rows["bargain"]["units"],
            rows["bargain"]["gmv"], rows["bargain"]["discount"], rows["bargain"]["new_users"]) == (
        1, 2, 1, Decimal("99.00"), Decimal("100.00"), 2)
    assert (rows["draw"]["completions"], rows["draw"]["prize_cost"]) == (1, Decimal("2.00"))


def test_cli_prints_the_report(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    _shop(db)
    result = CliRunner().invoke(cli, ["--db", db, "report", "activities", "--kind", "bargain", "--format", "json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)["rows"]
    assert row["kind"] == "bargain" and row["helpers"] == 2 and row["gmv"] == "99.00"
    table = CliRunner().invoke(cli, ["--db", db, "report", "activities"], catch_exceptions=False)
    assert "flash_sale" in table.output and "draw" in table.output
