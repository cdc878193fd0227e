"""Domain errors that carry their gRPC status.

Servicers raise these; the server bootstrap turns them into a status with the
sentence as its details, so a servicer never has to know about `context.abort`.
"""

from __future__ import annotations

import grpc


class PlaneError(Exception):
    """A refusal a person can act on. `code` is the gRPC status it maps to."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(PlaneError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class FailedPrecondition(PlaneError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class NotFound(PlaneError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(PlaneError):
    code = grpc.StatusCode.ALREADY_EXISTS


class Aborted(PlaneError):
    code = grpc.StatusCode.ABORTED


class PermissionDenied(PlaneError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(PlaneError):
    code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(PlaneError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(PlaneError):
    code = grpc.StatusCode.UNAVAILABLE
