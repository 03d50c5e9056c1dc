"""An async face for a :class:`~siyu.Workspace`: every call runs in a worker thread.

siyu's storage drivers (sqlite3, psycopg's pool) block, so an ``async def``
endpoint must not call the workspace directly: one slow query would stall
every request on the event loop. :class:`AsyncWorkspace` runs each call in a
worker thread (``anyio.to_thread.run_sync``) and awaits it::

    import siyu
    from siyu.aio import AsyncWorkspace

    aws = AsyncWorkspace(siyu.connect("sqlite:///shop.db"))
    balance = await aws.points.balance(user_id)       # any service method
    order = await aws.run(checkout, user_id, cart)    # your own function, typed

Semantics and errors are those of the synchronous call, because it *is* the
synchronous call: the same :class:`~siyu.errors.SiyuError` subclasses are
raised from the ``await``. Two things differ, both because one call is one
trip to a thread:

- A transaction spanning several calls (``with ws.write(): ...``) cannot be
  held open across ``await``: write it as a plain function and pass it to
  :meth:`AsyncWorkspace.run`, which runs it in one thread from start to end.
- :meth:`AsyncWorkspace.correlate` sets the correlation id for the calls of
  the current task (a ``contextvars`` variable), not for a thread.

At most ``threads`` calls run at once (default: 40, anyio's own default);
the rest wait on the event loop, not in a blocked thread. Needs ``anyio``
(``pip install 'siyu[web]'``; FastAPI and Starlette depend on it already).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from .errors import SiyuError, ValidationError

if TYPE_CHECKING:
    from .workspace import Workspace

__all__ = ["AsyncService", "AsyncWorkspace"]

P = ParamSpec("P")
T = TypeVar("T")

_correlation: contextvars.ContextVar[str | None] = contextvars.ContextVar("siyu_correlation", default=None)
#: Workspace methods whose effect is bound to the calling thread.
_THREAD_BOUND = frozenset({"write", "read", "in_transaction", "emit"})
#: Attribute values handed back as they are (configuration, not services to call).
_PLAIN = (str, bytes, int, float, bool, type(None), tuple, list, dict, set, frozenset)


def _anyio() -> Any:
    try:
        import anyio.to_thread
    except ImportError:
        raise SiyuError("siyu.aio needs anyio: pip install 'siyu[web]'") from None
    return anyio


class AsyncWorkspace:
    """A workspace whose service calls are awaited (see the module docstring).

    ``threads`` caps how many calls run in worker threads at once. The
    wrapped workspace stays usable directly from synchronous code and is
    available as :attr:`sync`.
    """

    def __init__(self, workspace: Workspace, *, threads: int = 40) -> None:
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ValidationError(f"threads={threads!r}; give a positive integer (e.g. 40)")
        #: The synchronous :class:`~siyu.Workspace` every call runs on.
        self.sync = workspace
        self._threads = threads
        self._limiters: weakref.WeakKeyDictionary[object, Any] = weakref.WeakKeyDictionary()

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` in a worker thread and return its result.

        Use it for several siyu calls that must commit together: ``fn`` opens
        ``with ws.write():`` and makes them, all in one thread."""
        anyio = _anyio()
        # One limiter per event loop: a limiter cannot be shared between loops.
        loop = asyncio.get_running_loop()
        limiter = self._limiters.get(loop)
        if limiter is None:
            limiter = self._limiters[loop] = anyio.CapacityLimiter(self._threads)
        correlation = _correlation.get()
        call = functools.partial(fn, *args, **kwargs)
        if correlation is not None:
            call = functools.partial(self._correlated, correlation, call)
        result: T = await anyio.to_thread.run_sync(call, limiter=limiter)
        return result

    def _correlated(self, correlation: str, call: Callable[[], T]) -> T:
        with self.sync.correlate(correlation):
            return call()

    @asynccontextmanager
    async def correlate(self, correlation_id: str) -> AsyncIterator[None]:
        """Tag the events of the writes awaited in this block (by this task) with
        ``correlation_id``, e.g. a request id; see :meth:`siyu.Workspace.correlate`."""
        if not isinstance(correlation_id, str) or not 0 < len(correlation_id) <= 128:
            raise ValidationError("correlation_id must be a non-empty string of at most 128 characters")
        token = _correlation.set(correlation_id)
        try:
            yield
        finally:
            _correlation.reset(token)

    async def aclose(self) -> None:
        """Close the workspace (in a worker thread: closing may wait for the relay)."""
        await self.run(self.sync.close)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in _THREAD_BOUND:
            raise AttributeError(
                f"AsyncWorkspace has no {name}(): a transaction cannot stay open across await. Put the calls in "
                f"a function that uses `with ws.{name}():` and await aws.run(function, ...)"
            )
        return _wrap(self, getattr(self.sync, name))

    def __repr__(self) -> str:
        return f"<AsyncWorkspace {self.sync!r}>"


class AsyncService:
    """A service (``aws.points``, ``aws.referrals.tasks`` ...) whose methods return awaitables."""

    def __init__(self, owner: AsyncWorkspace, target: object) -> None:
        self._owner = owner
        self._target = target

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return _wrap(self._owner, getattr(self._target, name))

    def __repr__(self) -> str:
        return f"<AsyncService {self._target!r}>"


def _wrap(owner: AsyncWorkspace, value: Any) -> Any:
    if isinstance(value, _PLAIN):
        return value
    if callable(value):

        @functools.wraps(value)
        async def call(*args: Any, **kwargs: Any) -> Any:
            return await owner.run(value, *args, **kwargs)

        return call
    return AsyncService(owner, value)
