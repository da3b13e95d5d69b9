"""Domain exceptions of ai_usage, in one place so tasks and tests can tell failures apart."""

from __future__ import annotations


class AiUsageError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigurationError(AiUsageError):
    """A setting or a connection is missing or malformed; the message names it and the accepted forms."""


class ContractError(AiUsageError):
    """A table contract in include/schemas is invalid, or rows do not fit it."""


class WarehouseError(AiUsageError):
    """A warehouse operation failed; partitions it was replacing are left as they were."""


class VendorAPIError(AiUsageError):
    """A vendor API answered with a non-retryable error (4xx other than 429), or retries ran out."""

    def __init__(self, message: str, *, status: int | None = None, conn_id: str | None = None):
        super().__init__(message)
        self.status = status
        self.conn_id = conn_id


class AlertDeliveryError(AiUsageError):
    """An alert channel is configured but could not be reached."""
