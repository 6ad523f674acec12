"""Dockgate's service: the IAM policy engine for Amazon ECR semantics, its store and its edges."""

__version__ = "0.1.0"
