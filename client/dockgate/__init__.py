"""Dockgate's Python client (the gRPC contract and client arrive with the service)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
