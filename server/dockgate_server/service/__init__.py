"""The gRPC edge: servicers, wire conversion, the admin token, metrics, logs, bootstrap."""

from dockgate_server.service.server import ServeConfig, serve

__all__ = ["ServeConfig", "serve"]
