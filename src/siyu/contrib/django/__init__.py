"""siyu in a Django project (``pip install 'siyu[django]'``).

Add the app and the settings::

    INSTALLED_APPS = [..., "siyu.contrib.django"]
    SIYU = {
        "url": "postgresql://siyu@db/shop",     # siyu's own database (or a schema of yours)
        "secret_key": env("SIYU_SECRET_KEY"),
        "plugins": ["siyu.otel"],               # optional, any connect() argument
    }

and call :func:`workspace` wherever a view, a signal handler or a task
needs siyu: one workspace per process, opened on first use, shared by the
process's threads and closed when the process exits. A process forked
after it was opened opens its own. Two management commands run siyu's
background work: ``manage.py siyu_worker`` (``siyu worker``) and
``manage.py siyu_run_due`` (``siyu run-due``, for cron).

siyu writes through its own connections and commits its own transactions.
A Django ``transaction.atomic()`` block that calls siyu and then rolls back
does **not** undo what siyu wrote. Call siyu after the commit::

    with transaction.atomic():
        order = Order.objects.create(...)
        transaction.on_commit(lambda: workspace().points.earn(member, 10, reason="purchase",
                                                              key=f"order-{order.pk}"))
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...workspace import Workspace

__all__ = ["close", "connect_kwargs", "workspace"]

#: The keys of ``settings.SIYU``: the arguments of :func:`siyu.connect`.
SETTINGS_KEYS = ("url", "secret_key", "plugins", "tz", "delivery")

_lock = threading.Lock()
_opened: Workspace | None = None


def connect_kwargs(**overrides: Any) -> dict[str, Any]:
    """The :func:`siyu.connect` arguments ``settings.SIYU`` gives, with ``overrides`` on top."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    config = getattr(settings, "SIYU", None)
    if not isinstance(config, dict) or not isinstance(config.get("url"), str):
        raise ImproperlyConfigured(
            'settings.SIYU must be a dict with at least "url", e.g. SIYU = {"url": "sqlite:///siyu.db"}')
    unknown = sorted(set(config) - set(SETTINGS_KEYS))
    if unknown:
        raise ImproperlyConfigured(f"settings.SIYU has unknown keys {unknown}; known: {', '.join(SETTINGS_KEYS)}")
    return {**config, **overrides}


def workspace() -> Workspace:
    """This process's workspace, opened from ``settings.SIYU`` on first use."""
    global _opened
    ws = _opened
    if ws is not None and ws._pid == os.getpid():
        return ws
    with _lock:
        if _opened is None or _opened._pid != os.getpid():
            # A fork's copy is only forgotten: its connections belong to the parent.
            import siyu

            kwargs = connect_kwargs()
            _opened = siyu.connect(kwargs.pop("url"), **kwargs)
        return _opened


def close() -> None:
    """Close this process's workspace (the next :func:`workspace` call opens a new one)."""
    global _opened
    with _lock:
        if _opened is not None:
            _opened.close()
            _opened = None


atexit.register(close)
