"""The example's tests: ``python manage.py test shop`` (tests/test_example_django_shop.py runs them).

TransactionTestCase, not TestCase: TestCase never commits, so ``on_commit`` callbacks
would never run and the tests would not show what a real request does.
"""

import json
from itertools import count

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.test import TransactionTestCase, override_settings

from siyu.contrib.django import connect_kwargs, workspace

from .models import Order

_phones = count(13800138000)


def new_member() -> int:
    return workspace().users.add(phone=str(next(_phones))).id


class RollbackTests(TransactionTestCase):
    def test_a_rolled_back_django_transaction_does_not_undo_a_siyu_call_made_inside_it(self) -> None:
        member = new_member()
        with self.assertRaises(RuntimeError), transaction.atomic():
            Order.objects.create(member_id=member, total_fen=9_900)
            workspace().points.earn(member, 99, reason="purchase", key="inside-atomic")
            raise RuntimeError("payment refused")
        self.assertEqual(Order.objects.filter(member_id=member).count(), 0)
        self.assertEqual(workspace().points.balance(member), 99)  # siyu committed on its own

    def test_on_commit_makes_the_siyu_call_follow_the_django_outcome(self) -> None:
        member = new_member()
        with self.assertRaises(RuntimeError), transaction.atomic():
            Order.objects.create(member_id=member, total_fen=9_900)
            transaction.on_commit(lambda: workspace().points.earn(member, 99, reason="purchase", key="rolled"))
            raise RuntimeError("payment refused")
        self.assertEqual(workspace().points.balance(member), 0)
        with transaction.atomic():
            Order.objects.create(member_id=member, total_fen=9_900)
            transaction.on_commit(lambda: workspace().points.earn(member, 99, reason="purchase", key="kept"))
            self.assertEqual(workspace().points.balance(member), 0)  # not before the commit
        self.assertEqual(workspace().points.balance(member), 99)


class ViewTests(TransactionTestCase):
    def post(self, url: str, body: dict[str, object]) -> dict[str, object]:
        response = self.client.post(url, json.dumps(body), content_type="application/json")
        self.assertEqual(response.status_code, 200, response.content)
        return response.json()  # type: ignore[no-any-return]

    def test_join_checkout_and_member_page(self) -> None:
        member = self.post("/members/", {"phone": "+86 139 0013 9000"})["member_id"]
        again = self.post("/members/", {"phone": "13900139000"})["member_id"]
        self.assertEqual(member, again)
        self.post("/checkout/", {"member_id": member, "total": "128.50"})
        page = self.client.get(f"/members/{member}/").json()
        self.assertEqual(page, {"member_id": member, "points": 128, "orders": 1})

    def test_a_failed_checkout_leaves_both_databases_as_they_were(self) -> None:
        member = self.post("/members/", {"phone": "13700137000"})["member_id"]
        with self.assertRaises(ValueError):
            self.client.post("/checkout/", json.dumps({"member_id": member, "total": "50", "fail": True}),
                             content_type="application/json")
        self.assertEqual(self.client.get(f"/members/{member}/").json()["points"], 0)
        self.assertEqual(Order.objects.count(), 0)


class SettingsTests(TransactionTestCase):
    def test_one_workspace_per_process(self) -> None:
        self.assertIs(workspace(), workspace())

    def test_settings_are_checked(self) -> None:
        with override_settings(SIYU={"url": "memory://", "secret": "x"}), \
                self.assertRaisesRegex(ImproperlyConfigured, "unknown keys"):
            connect_kwargs()
        with override_settings(SIYU={}), self.assertRaisesRegex(ImproperlyConfigured, '"url"'):
            connect_kwargs()
