"""Fleets the PostgreSQL store tests write: small ones, the realistic bundle, big ones."""

from __future__ import annotations

from dockgate_server.store.bundle import bundle_to_fleet
from dockgate_server.store.model import Fleet, ManagedPolicy, Repository, Role, User
from tests.server.store.fleet_bundles import large_bundle, realistic_bundle

__all__ = ["ACCOUNT", "big_fleet", "read_policy", "realistic_fleet", "repository", "user"]

ACCOUNT = "111122223333"

ALLOW_PULL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "ecr:BatchGetImage", "Resource": "*"}],
}


def repository(name: str, account: str = ACCOUNT) -> Repository:
    return Repository(f"arn:aws:ecr:us-east-1:{account}:repository/{name}", {"team": name})


def user(name: str, *attached: str, account: str = ACCOUNT) -> User:
    return User(account, name, inline={"pull": ALLOW_PULL}, attached=attached)


def role(name: str, account: str = ACCOUNT) -> Role:
    return Role(account, name, inline={"pull": ALLOW_PULL})


def read_policy(name: str = "read", account: str = ACCOUNT) -> ManagedPolicy:
    return ManagedPolicy(
        f"arn:aws:iam::{account}:policy/{name}", name, "/", "v1", {"v1": ALLOW_PULL}
    )


def realistic_fleet() -> Fleet:
    return bundle_to_fleet(realistic_bundle())


def big_fleet(users: int, repositories: int, account: str = ACCOUNT) -> Fleet:
    return bundle_to_fleet(large_bundle(account, users, repositories))
