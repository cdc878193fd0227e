"""Free loopback ports: the shared implementation lives in services/common/ports.py."""

from services.common.ports import free_port

__all__ = ["free_port"]
