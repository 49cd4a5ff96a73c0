"""The NGSI-LD error hierarchy (ETSI GS CIM 009, clause 5.5.2) and its ProblemDetails form."""

from __future__ import annotations

from typing import Any, ClassVar

_BASE = "https://uri.etsi.org/ngsi-ld/errors/"


class NgsiLdError(Exception):
    """A client-visible error: carries the spec's type URI, HTTP status and a detail text."""

    type_name: ClassVar[str] = "InternalError"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, *, instance: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.instance = instance

    @property
    def type_uri(self) -> str:
        return _BASE + self.type_name

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the error's response carries besides its body."""
        return {}

    def problem_details(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.instance is not None:
            body["instance"] = self.instance
        return body


class InvalidRequest(NgsiLdError):
    type_name = "InvalidRequest"
    status = 400
    title = "Invalid request"


class BadRequestData(NgsiLdError):
    type_name = "BadRequestData"
    status = 400
    title = "Bad request data"


class ResourceNotFound(NgsiLdError):
    type_name = "ResourceNotFound"
    status = 404
    title = "Resource not found"


class NonexistentTenant(NgsiLdError):
    """Its answer echoes the tenant it names in NGSILD-Tenant, as every tenant's answer does."""

    type_name = "NonexistentTenant"
    status = 404
    title = "Tenant does not exist"

    def __init__(self, detail: str, *, tenant: str | None = None) -> None:
        super().__init__(detail)
        self.tenant = tenant

    @property
    def headers(self) -> dict[str, str]:
        return {} if self.tenant is None else {"NGSILD-Tenant": self.tenant}


class AlreadyExists(NgsiLdError):
    type_name = "AlreadyExists"
    status = 409
    title = "Already exists"


class OperationNotSupported(NgsiLdError):
    type_name = "OperationNotSupported"
    status = 422
    title = "Operation not supported"


class TooManyResults(NgsiLdError):
    """A page larger than the broker serves (clause 5.5.9)."""

    type_name = "TooManyResults"
    status = 403
    title = "Too many results"


class TooComplexQuery(NgsiLdError):
    """A query the store could not answer within its time budget (clause 5.5.2)."""

    type_name = "TooComplexQuery"
    status = 403
    title = "Too complex query"


class TenantBusy(NgsiLdError):
    """One tenant has more reads in flight than its share of the store: retry later."""

    type_name = "InternalError"
    status = 503
    title = "Tenant busy"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class NotAcceptable(NgsiLdError):
    # The spec has no error type of its own for 406; InvalidRequest is what brokers send.
    type_name = "InvalidRequest"
    status = 406
    title = "Not acceptable"


class UnsupportedMediaType(NgsiLdError):
    type_name = "InvalidRequest"
    status = 415
    title = "Unsupported media type"


class LengthRequired(NgsiLdError):
    """A write whose body has no declared length (RFC 9110 15.5.12)."""

    type_name = "InvalidRequest"
    status = 411
    title = "Length required"


class PayloadTooLarge(NgsiLdError):
    type_name = "BadRequestData"
    status = 413
    title = "Payload too large"


class LdContextNotAvailable(NgsiLdError):
    """A remote @context the broker could not retrieve (clause 5.5.2 of V1.8: 504)."""

    type_name = "LdContextNotAvailable"
    status = 504
    title = "JSON-LD @context not available"


class ContextReloadFailed(LdContextNotAvailable):
    """Delete @context with reload=true could not download it again (clause 6.30, 504)."""

    status = 504


class InternalError(NgsiLdError):
    pass


class StoreUnavailable(NgsiLdError):
    type_name = "InternalError"
    status = 503
    title = "Store unavailable"


class _AccessError(NgsiLdError):
    """Access errors, which ETSI GS CIM 009 leaves to the deployment: RFC 9457 `about:blank`."""

    @property
    def type_uri(self) -> str:
        return "about:blank"


class Unauthorized(_AccessError):
    """No API key, or one the platform does not know."""

    type_name = "Unauthorized"
    status = 401
    title = "Unauthorized"


class Forbidden(_AccessError):
    """A known API key that may not do this in this tenant."""

    type_name = "Forbidden"
    status = 403
    title = "Forbidden"
