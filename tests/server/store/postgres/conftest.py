"""The PostgreSQL tests' own fixture: a cluster per test for the ones that stop and restart it."""

from __future__ import annotations

from tests.postgres_cluster import own_postgres_cluster

__all__ = ["own_postgres_cluster"]
