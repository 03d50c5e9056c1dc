"""The shop's own table: orders live in Django's database, points and members in siyu's."""

from django.db import models


class Order(models.Model):
    member_id = models.BigIntegerField()  # the siyu user id
    total_fen = models.BigIntegerField()
    created = models.DateTimeField(auto_now_add=True)
