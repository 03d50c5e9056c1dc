"""``siyu wallet``: stored value, payment callbacks, the liability and points reports."""

from __future__ import annotations

import json
from typing import Any

import attrs
import click

from ._common import CliState, SiyuGroup, pass_state

__all__ = ["command"]


def _json(value: Any) -> None:
    click.echo(json.dumps(value, default=str, ensure_ascii=False, sort_keys=True))


@click.group("wallet", cls=SiyuGroup)
def command() -> None:
    """Stored value (储值), gift cards and the points mall: balances, payment callbacks, reports."""


@command.command("balance")
@click.argument("user_id", type=int)
@pass_state
def balance(state: CliState, user_id: int) -> None:
    """A member's stored value: principal and bonus, in yuan."""
    found = state.workspace().wallet.balance(user_id)
    _json({"user_id": user_id, "principal": found.principal, "bonus": found.bonus, "total": found.total})


@command.command("confirm")
@click.argument("payment_id")
@pass_state
def confirm(state: CliState, payment_id: str) -> None:
    """Confirm a recharge's payment (safe to repeat: it credits once)."""
    recharge = state.workspace().wallet.confirm(payment_id)
    _json({"payment_id": recharge.payment_id, "status": recharge.status, "amount": recharge.amount,
           "bonus": recharge.bonus, "note": recharge.note})


@command.command("liability")
@pass_state
def liability(state: CliState) -> None:
    """What the shop owes on stored value and gift cards, and the escrow (资金存管) required."""
    report = state.workspace().wallet.liability()
    _json({**attrs.asdict(report), "principal": report.principal, "bonus": report.bonus,
           "gift_cards": report.gift_cards, "escrow": report.escrow})


@command.command("points")
@pass_state
def points(state: CliState) -> None:
    """The points liability (issued, spent, expired, outstanding) and redemptions by reward."""
    ws = state.workspace()
    _json({"points": ws.points_mall.points_liability(), "rewards": ws.points_mall.report()})
