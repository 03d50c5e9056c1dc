"""HTTP helpers for channel plugins, the ones the built-in channels use.

* :func:`make_client` -- an ``httpx.Client`` on a base URL that honours the
  channel's ``transport=`` (tests pass ``httpx.MockTransport``) and ``timeout=``.
* :func:`request` -- one request, with network failures turned into
  :class:`~siyu.errors.ChannelError`: a failure to connect is retryable
  (nothing reached the provider); a timeout after the request was written is
  ``timeout_unknown`` and not retryable when ``sent_means_maybe_delivered=True``
  (a send that is not idempotent may have been delivered).
* :func:`json_object` -- the provider's JSON object after checking the HTTP status.
* :func:`status_error` -- the ChannelError for a non-2xx status (429 with
  ``retry_after``, 5xx retryable, other 4xx permanent), or ``None``.
  Pass ``creates=True`` to both for a call that creates something (a send):
  then HTTP 5xx / 408 and a body that is not JSON are *unknown* outcomes
  (``timeout_unknown``, never retried), because the provider may have done it.
* :func:`unknown_outcome` -- that ChannelError, for a provider answer of your
  own that may mean "done" (a "busy" code, success without a message id).
* :func:`retry_after_seconds` -- a ``Retry-After`` header in seconds.

Needs the ``channels`` extra (``pip install 'siyu[channels]'``).
"""

from __future__ import annotations

from ._http import json_object, make_client, request, retry_after_seconds, status_error, unknown_outcome

__all__ = ["json_object", "make_client", "request", "retry_after_seconds", "status_error", "unknown_outcome"]
