"""The store: the fleet and its revisions in SQLite, and bundles in and out."""

from dockgate_server.store.bundle import (
    BUNDLE_FORMAT,
    BundleError,
    bundle_to_fleet,
    fleet_to_bundle,
)
from dockgate_server.store.model import (
    Fleet,
    Group,
    ManagedPolicy,
    Organization,
    OrgNode,
    Repository,
    Role,
    User,
)
from dockgate_server.store.sqlite import Change, Store
from dockgate_server.store.validate import StoreError

__all__ = [
    "BUNDLE_FORMAT",
    "BundleError",
    "Change",
    "Fleet",
    "Group",
    "ManagedPolicy",
    "OrgNode",
    "Organization",
    "Repository",
    "Role",
    "Store",
    "StoreError",
    "User",
    "bundle_to_fleet",
    "fleet_to_bundle",
]
