"""The store: the port every backend implements, the fleet model, and bundles in and out."""

from dockgate_server.store.bundle import (
    BUNDLE_FORMAT,
    BundleError,
    bundle_to_fleet,
    fleet_to_bundle,
)
from dockgate_server.store.model import (
    Change,
    Credentials,
    Delta,
    Fleet,
    Group,
    ManagedPolicy,
    Organization,
    OrgNode,
    Repository,
    Role,
    User,
)
from dockgate_server.store.port import (
    Conflict,
    FleetStore,
    MissingStoreError,
    NotFound,
    Refused,
    StoreError,
    Unavailable,
    open_store,
)

__all__ = [
    "BUNDLE_FORMAT",
    "BundleError",
    "Change",
    "Conflict",
    "Credentials",
    "Delta",
    "Fleet",
    "FleetStore",
    "Group",
    "ManagedPolicy",
    "MissingStoreError",
    "NotFound",
    "OrgNode",
    "Organization",
    "Refused",
    "Repository",
    "Role",
    "StoreError",
    "Unavailable",
    "User",
    "bundle_to_fleet",
    "fleet_to_bundle",
    "open_store",
]
