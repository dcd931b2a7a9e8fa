"""A busy collector's refusal says when to come back (x-remdiag-retry-after-ms, trailing
metadata of an UNAVAILABLE from collector/admission.py), on Connect and on Enroll alike."""

from __future__ import annotations

import grpc

RETRY_AFTER_HEADER = "x-remdiag-retry-after-ms"


def asked_pause(exc: grpc.aio.AioRpcError) -> float | None:
    """The pause in seconds a busy collector asked for when it refused the call, or None."""
    if exc.code() != grpc.StatusCode.UNAVAILABLE:
        return None
    value = dict(exc.trailing_metadata() or ()).get(RETRY_AFTER_HEADER)
    return int(value) / 1000 if isinstance(value, str) and value.isdigit() else None
