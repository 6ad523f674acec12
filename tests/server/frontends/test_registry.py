"""The registry doors' settings: whose registry they serve, and `--registry-host` entries."""

from __future__ import annotations

import re

import pytest

from dockgate_server.frontends.registry import (
    RegistrySettings,
    parse_registry_host,
    parse_registry_hosts,
)
from dockgate_server.registry.routes import Registry

ACCOUNT = "111122223333"
OTHER = "444455556666"
NEED = (
    "the registry adapters need --registry-account and --registry-region, "
    "or --registry-host HOST=ACCOUNT:REGION"
)


@pytest.mark.parametrize(
    ("text", "host", "registry"),
    [
        (
            f"registry.example={ACCOUNT}:us-east-1",
            "registry.example",
            Registry(ACCOUNT, "us-east-1"),
        ),
        (
            f"Registry.Example:5000={OTHER}:eu-west-1",
            "registry.example:5000",
            Registry(OTHER, "eu-west-1"),
        ),
        (
            f"[::1]:8443={ACCOUNT}:cn-north-1",
            "[::1]:8443",
            Registry(ACCOUNT, "cn-north-1", "aws-cn"),
        ),
        (
            f"{OTHER}.dkr.ecr.us-east-1.amazonaws.com={OTHER}:us-east-1",
            f"{OTHER}.dkr.ecr.us-east-1.amazonaws.com",
            Registry(OTHER, "us-east-1"),
        ),
    ],
)
def test_parse_registry_host(text: str, host: str, registry: Registry) -> None:
    assert parse_registry_host(text) == (host, registry)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("registry.example", "expected HOST=ACCOUNT:REGION"),
        (f"registry.example={ACCOUNT}", "expected HOST=ACCOUNT:REGION"),
        (f"={ACCOUNT}:us-east-1", "expected HOST=ACCOUNT:REGION"),
        (f"registry example={ACCOUNT}:us-east-1", "expected HOST=ACCOUNT:REGION"),
        ("registry.example=1234:us-east-1", "registry account `1234` is not 12 digits"),
        (f"registry.example={ACCOUNT}:nowhere", "registry region `nowhere` is not a Region name"),
    ],
)
def test_a_malformed_registry_host_names_the_option(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^--registry-host `") as raised:
        parse_registry_host(text)
    assert str(raised.value) == f"--registry-host `{text}`: {message}"


def test_a_host_given_for_two_registries_is_an_error() -> None:
    same = [f"registry.example={ACCOUNT}:us-east-1", f"REGISTRY.example.={ACCOUNT}:us-east-1"]
    assert parse_registry_hosts(same) == {"registry.example": Registry(ACCOUNT, "us-east-1")}
    with pytest.raises(ValueError, match=r"`registry\.example` is given for two registries"):
        parse_registry_hosts([*same, f"registry.example={OTHER}:us-east-1"])


@pytest.mark.parametrize(
    "config", [RegistrySettings(), RegistrySettings(trusted_proxies=("10.0.0.0/8",))]
)
def test_the_registry_doors_need_a_registry(config: RegistrySettings) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(NEED)}$"):
        config.check(needed=True)


def test_without_registry_doors_no_registry_is_needed() -> None:
    RegistrySettings().check(needed=False)


def test_a_fixed_registry_ignores_the_host() -> None:
    config = RegistrySettings(account=ACCOUNT, region="us-gov-west-1")
    config.check(needed=True)
    gate = config.gate_config()
    assert gate.registry == Registry(ACCOUNT, "us-gov-west-1", "aws-us-gov")
    assert gate.hosts == {}


def test_a_host_map_is_handed_to_the_gate() -> None:
    config = RegistrySettings(
        hosts=(f"a.example={ACCOUNT}:us-east-1", f"b.example:5000={OTHER}:eu-west-1")
    )
    config.check(needed=True)
    gate = config.gate_config()
    assert gate.registry is None
    assert gate.hosts == {
        "a.example": Registry(ACCOUNT, "us-east-1"),
        "b.example:5000": Registry(OTHER, "eu-west-1"),
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            RegistrySettings(
                account=ACCOUNT, region="us-east-1", hosts=(f"a.example={ACCOUNT}:us-east-1",)
            ),
            "--registry-host and --registry-account name the registry two ways",
        ),
        (RegistrySettings(account=ACCOUNT), "go together"),
        (RegistrySettings(hosts=("a.example",)), "--registry-host `a.example`"),
        (RegistrySettings(account="1", region="us-east-1"), "not 12 digits"),
        (RegistrySettings(trusted_proxies=("nowhere",)), "trusted proxy `nowhere`"),
    ],
)
@pytest.mark.parametrize("needed", [True, False])
def test_settings_that_cannot_work_are_refused(
    config: RegistrySettings, message: str, needed: bool
) -> None:
    # refused even with no registry door on: a mistake is named, not left for later
    with pytest.raises(ValueError, match=message):
        config.check(needed=needed)


@pytest.mark.parametrize(
    ("config", "region"),
    [
        (RegistrySettings(account=ACCOUNT, region="eu-west-1"), "eu-west-1"),
        (RegistrySettings(hosts=(f"a.example={ACCOUNT}:us-east-1",)), "us-east-1"),
        (
            RegistrySettings(
                hosts=(f"a.example={ACCOUNT}:us-east-1", f"b.example={OTHER}:us-east-1")
            ),
            "us-east-1",
        ),
        (
            RegistrySettings(
                hosts=(f"a.example={ACCOUNT}:us-east-1", f"b.example={OTHER}:eu-west-1")
            ),
            None,
        ),
        (RegistrySettings(), None),
    ],
)
def test_the_region_logins_are_for(config: RegistrySettings, region: str | None) -> None:
    assert config.registry_region == region
