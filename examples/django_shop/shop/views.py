"""Views that write to Django's database and to siyu's: siyu is called after Django commits."""

import json
from decimal import Decimal

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from siyu.contrib.django import workspace

from .models import Order


@csrf_exempt
@require_POST
def join(request: HttpRequest) -> JsonResponse:
    """A shopper becomes a member (a siyu user; siyu keeps the phone encrypted when a key is set)."""
    body = json.loads(request.body)
    ws = workspace()
    member = ws.users.find(phone=body["phone"]) or ws.users.add(phone=body["phone"], source="django_shop")
    return JsonResponse({"member_id": member.id})


@csrf_exempt
@require_POST
def checkout(request: HttpRequest) -> JsonResponse:
    """Store the order in Django's database; award points in siyu's only once that committed.

    siyu commits its own transactions: a call made inside ``atomic()`` stays done when the
    block rolls back. ``on_commit`` runs it after the commit instead, and the order's key
    makes a retry (a crash between the two commits, a re-run task) award the points once.
    """
    body = json.loads(request.body)
    total = Decimal(str(body["total"]))
    with transaction.atomic():
        order = Order.objects.create(member_id=int(body["member_id"]), total_fen=int(total * 100))
        points = int(total)  # one point per yuan
        transaction.on_commit(lambda: workspace().points.earn(
            order.member_id, points, reason="purchase", key=f"django-order-{order.pk}"))
        if body.get("fail"):
            raise ValueError("payment refused")  # rolls back the order, and the points never happen
    return JsonResponse({"order_id": order.pk, "points": points})


def member(request: HttpRequest, member_id: int) -> HttpResponse:
    ws = workspace()
    return JsonResponse({"member_id": member_id, "points": ws.points.balance(member_id),
                         "orders": Order.objects.filter(member_id=member_id).count()})
