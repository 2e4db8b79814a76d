"""The error the HTTP API answers, in vLLM's envelope."""

from __future__ import annotations


class ApiError(Exception):
    """An answer other than 2xx: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status, message, err_type="BadRequestError", param=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.err_type = err_type
        self.param = param

    def body(self):
        return {"error": {"message": self.message, "type": self.err_type, "param": self.param, "code": self.status}}
