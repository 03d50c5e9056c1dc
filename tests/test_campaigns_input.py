"""Whatever the arguments, campaign calls raise only ``SiyuError`` and change nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

import siyu
from siyu.errors import ValidationError
from siyu.testing import RecordingChannel

Call = Callable[[siyu.Workspace, int], Any]

BAD: dict[str, Call] = {
    "trigger with a misspelt key": lambda ws, c: ws.campaigns.create(
        "t", channel="recording", template="x", trigger={"evnt": "UserCreated"}),
    "trigger where= not JSON-able": lambda ws, c: ws.campaigns.create(
        "t", channel="recording", template="x", trigger={"event": "UserCreated", "where": {"source": object()}}),
    "trigger within= not a timedelta": lambda ws, c: ws.campaigns.create(
        "t", channel="recording", template="x", trigger={"event": "UserCreated", "within": 5}),
    "decide alpha= text": lambda ws, c: ws.campaigns.decide(c, alpha="x"),  # type: ignore[arg-type]
    "decide threshold= None": lambda ws, c: ws.campaigns.decide(c, threshold=None),  # type: ignore[arg-type]
    "record_receipts of a number": lambda ws, c: ws.campaigns.record_receipts(5),  # type: ignore[arg-type]
    "resume limit= text": lambda ws, c: ws.campaigns.resume(c, limit="x"),  # type: ignore[arg-type]
    "preview at= naive": lambda ws, c: ws.campaigns.preview(c, at=datetime(2026, 11, 22, 8)),
    "preview at= text": lambda ws, c: ws.campaigns.preview(c, at="now"),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_arguments_are_refused_clearly_and_change_nothing(ws: siyu.Workspace, name: str) -> None:
    ws.channels.install(RecordingChannel())
    ids = ws.users.add_many([{} for _ in range(10)])
    c = ws.campaigns.create("c", audience=ids, channel="recording", template="hi", variants={"A": {}, "B": {}})
    ws.campaigns.pilot(c.id, fraction=0.5)
    with ws.read() as tx:
        before = [tx.campaigns.all(), tx.campaigns.deliveries(c.id, user_id=None, status=None, after_id=0,
                                                              limit=1000)]
    with pytest.raises(ValidationError):
        BAD[name](ws, c.id)
    with ws.read() as tx:
        assert [tx.campaigns.all(), tx.campaigns.deliveries(c.id, user_id=None, status=None, after_id=0,
                                                            limit=1000)] == before
