"""The Django app config: checks ``settings.SIYU`` when Django starts."""

from __future__ import annotations

from django.apps import AppConfig


class SiyuConfig(AppConfig):
    name = "siyu.contrib.django"
    label = "siyu"
    verbose_name = "siyu"

    def ready(self) -> None:
        from . import connect_kwargs

        connect_kwargs()  # a missing or misspelled setting fails at start-up, not on the first request
