"""What a broker's answer means to the caller: try again later, or refused for good."""

from __future__ import annotations

__all__ = ["BrokerUnreachable", "NgsiLdClientError", "Refused", "RetryLater"]


class NgsiLdClientError(Exception):
    """The root of the client's errors."""


class RetryLater(NgsiLdClientError):
    """The broker cannot take the request now (down, 5xx, 408, 429, a timeout): the same
    request may succeed later."""


class BrokerUnreachable(RetryLater):
    """No HTTP answer came back (connection refused or reset, timeout)."""


class Refused(NgsiLdClientError):
    """The broker answered the whole request with an error that retrying will not change."""

    def __init__(self, status: int, detail: str, text: str = "") -> None:
        super().__init__(f"the broker answered {status}: {detail}")
        self.status = status
        self.detail = detail
        self.text = text
