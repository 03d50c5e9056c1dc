"""An erased user accepts no writes: every write API that takes a user id refuses it
with :class:`~siyu.errors.UserErased` and changes nothing. Reads may answer.

Found by difference, as for merged-away users (``test_merged_writes``): a call that
writes for an active user must refuse the same call for the erased one.
"""

from __future__ import annotations

import pytest

import siyu
from siyu.errors import UserErased, UserMerged
from siyu.testing import FakeClock
from sweep_support import SEED, START, seeded
from test_merged_writes import AUDITED_READS, WITH_USERS, _call

#: Erasing an erased user returns the first tombstone and writes nothing.
IDEMPOTENT = {"privacy.erase"}


@pytest.mark.parametrize("name", [n for n in WITH_USERS if n not in AUDITED_READS | IDEMPOTENT])
def test_an_erased_user_accepts_no_writes(name: str) -> None:
    seeded(FakeClock(START)).close()
    erased = SEED.erased
    if not any(all(_call(name, active)[:2]) for active in SEED.users[:3]):
        assert not _call(name, erased)[1], f"{name} wrote for erased user {erased}"
        return
    ok, _, error = _call(name, erased)
    assert not ok and isinstance(error, UserErased | UserMerged), f"{name} accepted erased user {erased}: {error!r}"
    assert isinstance(error, UserErased), f"{name}: {error!r}"
    assert error.user_id == erased and "erasure is final" in str(error)


def test_the_reported_writes_are_refused_with_the_date(ws: siyu.Workspace) -> None:
    uid = ws.users.add(phone="13900139000").id
    tombstone = ws.privacy.erase(uid)
    for write in (
        lambda: ws.points.earn(uid, 10, reason="late", key="late"),
        lambda: ws.events.track(uid, "page_view", properties={"page": "home"}),
        lambda: ws.tags.apply(uid, "interest/yoga"),
        lambda: ws.users.update(uid, attributes={"city": "上海"}),
    ):
        with pytest.raises(UserErased, match=f"erased on {tombstone.erased_at.date().isoformat()}"):
            write()
    assert ws.points.balance(uid) == 0 and ws.tags.of(uid) == set()  # reads answer
