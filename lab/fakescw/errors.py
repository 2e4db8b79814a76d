"""API errors, shaped like the bodies the Scaleway API answers with."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answered to the client as ``status`` with a JSON body.

    Backends may raise it from their hooks to make the API call that triggered
    the hook fail (for instance ``ApiError.out_of_stock(...)`` when no
    container can be started).
    """

    def __init__(self, status: int, error_type: str, message: str, **extra: Any) -> None:
        super().__init__(f"{status} {error_type}: {message}")
        self.status = status
        self.body: dict[str, Any] = {"type": error_type, "message": message, **extra}

    @classmethod
    def not_found(cls, resource: str, resource_id: str) -> ApiError:
        return cls(404, "not_found", "resource is not found", resource=resource, resource_id=resource_id)

    @classmethod
    def invalid_arguments(cls, fields: dict[str, str], reason: str = "constraint") -> ApiError:
        """400 invalid_arguments, with ``details`` and a legacy ``fields`` mapping."""
        details = [{"argument_name": name, "reason": reason, "help_message": help_} for name, help_ in fields.items()]
        return cls(
            400,
            "invalid_arguments",
            "invalid argument(s)",
            details=details,
            fields={name: [help_] for name, help_ in fields.items()},
        )

    @classmethod
    def invalid_request(cls, message: str) -> ApiError:
        """400 invalid_request_error: what the Instance API answers to a refused operation."""
        return cls(400, "invalid_request_error", message)

    @classmethod
    def transient_state(cls, resource: str, resource_id: str, current_state: str) -> ApiError:
        return cls(
            409,
            "transient_state",
            "resource is in a transient state",
            resource=resource,
            resource_id=resource_id,
            current_state=current_state,
        )

    @classmethod
    def precondition_failed(cls, precondition: str, help_message: str) -> ApiError:
        return cls(
            412, "precondition_failed", "precondition failed", precondition=precondition, help_message=help_message
        )

    @classmethod
    def out_of_stock(cls, resource: str, zone: str) -> ApiError:
        return cls(412, "out_of_stock", f"{resource} is out of stock in {zone}", resource=resource)

    @classmethod
    def quotas_exceeded(cls, resource: str, quota: int = 0, current: int = 0) -> ApiError:
        return cls(
            403,
            "quotas_exceeded",
            "quota(s) exceeded for this resource",
            details=[{"resource": resource, "quota": quota, "current": current}],
        )

    @classmethod
    def permissions_denied(cls, resource: str, action: str) -> ApiError:
        return cls(
            403,
            "permissions_denied",
            "insufficient permissions",
            details=[{"resource": resource, "action": action}],
        )

    @classmethod
    def denied_authentication(cls, reason: str) -> ApiError:
        return cls(401, "denied_authentication", "authentication is denied", method="api_key", reason=reason)

    @classmethod
    def not_implemented(cls, method: str, path: str) -> ApiError:
        return cls(501, "not_implemented", f"fakescw does not implement {method} {path}")
