"""Optional bearer-token check for the /v1 API."""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers

from ._errors import APIFailure, invalid_api_key


def check_bearer(headers: Headers, api_key: str | None) -> APIFailure | None:
    """None when the request may proceed; the 401 to send otherwise."""
    if api_key is None:
        return None
    scheme, _, token = headers.get("authorization", "").partition(" ")
    # Constant-time comparison so response timing does not reveal how much of the key matched.
    if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), api_key.encode()):
        return None
    return invalid_api_key()
