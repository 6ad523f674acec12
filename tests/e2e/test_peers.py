"""The end-to-end harness itself: images, the registry with skopeo, the example proxy configs."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.oci import build_image, noise, read_files, read_image
from tests.e2e.peers import (
    ENVOY_BIN,
    ENVOY_EXAMPLE,
    NGINX_BIN,
    NGINX_EXAMPLE,
    REGISTRY_BIN,
    SKOPEO_BIN,
    Registry,
    Skopeo,
    free_port,
    is_available,
    render_envoy_config,
    render_nginx_config,
    run_envoy,
    run_nginx,
    run_registry,
    validate_envoy_config,
    validate_nginx_config,
)

pytestmark = pytest.mark.skipif(
    not all(map(is_available, (REGISTRY_BIN, SKOPEO_BIN, ENVOY_BIN, NGINX_BIN))),
    reason="needs docker-registry, skopeo, envoy and nginx",
)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    with run_registry(tmp_path / "registry") as running:
        yield running


def test_same_content_same_digest_and_other_content_other_layer(tmp_path: Path) -> None:
    first = build_image(tmp_path / "a", "v1", "hello")
    again = build_image(tmp_path / "b", "v1", b"hello")
    other = build_image(tmp_path / "a", "v2", "world")

    assert first == again
    assert other != first
    assert read_image(tmp_path / "a", "v1").layers != read_image(tmp_path / "a", "v2").layers
    assert read_image(tmp_path / "a", "v1").manifest == first  # both tags kept in one layout
    assert read_files(tmp_path / "a", "v2") == {"hello.txt": b"world"}


def test_registry_alone_push_list_inspect_pull_delete(registry: Registry, tmp_path: Path) -> None:
    layout = tmp_path / "image"
    digest = build_image(layout, "v1", noise(64 * 1024, "registry-alone"))
    skopeo = Skopeo(tmp_path / "skopeo")
    address, name = registry.address, "team/app"

    pushed = skopeo.push(layout, "v1", address, name)
    assert pushed.ok, pushed
    assert registry.repositories() == [name]
    assert skopeo.blob_info_cache.exists()  # private state, not /var/lib/containers

    tags = skopeo.list_tags(address, name)
    assert tags.ok, tags
    assert json.loads(tags.stdout)["Tags"] == ["v1"]

    inspected = skopeo.inspect(address, name, "v1")
    assert inspected.ok, inspected
    assert json.loads(inspected.stdout)["Digest"] == digest

    raw = skopeo.inspect_raw(address, name, digest)
    assert raw.ok, raw
    assert json.loads(raw.stdout)["layers"][0]["digest"] == read_image(layout, "v1").layers[0]

    pulled = skopeo.pull(address, name, "v1", f"oci:{tmp_path / 'pulled'}:v1")
    assert pulled.ok, pulled
    assert read_files(tmp_path / "pulled", "v1") == read_files(layout, "v1")

    deleted = skopeo.delete(address, name, "v1")
    assert deleted.ok, deleted
    gone = skopeo.inspect_raw(address, name, digest)
    assert not gone.ok
    assert "manifest unknown" in gone.stderr.lower()


def test_a_second_push_of_a_known_layer_tries_a_mount(registry: Registry, tmp_path: Path) -> None:
    layout = tmp_path / "image"
    build_image(layout, "v1", "shared layer")
    skopeo = Skopeo(tmp_path / "skopeo", debug=True)

    assert skopeo.push(layout, "v1", registry.address, "team/one").ok
    second = skopeo.push(layout, "v1", registry.address, "team/two")

    assert second.ok, second
    assert "from=team%2Fone&mount=sha256%3A" in second.stderr
    fresh = Skopeo(tmp_path / "fresh", debug=True).push(layout, "v1", registry.address, "team/3")
    assert fresh.ok, fresh
    assert "mount=" not in fresh.stderr
    assert registry.repositories() == ["team/3", "team/one", "team/two"]


def test_example_configs_load_as_shipped_and_rendered(tmp_path: Path) -> None:
    rendered_envoy = tmp_path / "envoy.yaml"
    rendered_envoy.write_text(render_envoy_config(18080, 15051, 15000, admin_port=19901))
    rendered_nginx = tmp_path / "nginx.conf"
    rendered_nginx.write_text(render_nginx_config(18081, 15053, 15000))

    for config in (ENVOY_EXAMPLE, rendered_envoy):
        checked = validate_envoy_config(config)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    for number, config in enumerate((NGINX_EXAMPLE, rendered_nginx)):
        checked = validate_nginx_config(tmp_path / f"prefix-{number}", config)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "port_value: 15051 }" in rendered_envoy.read_text()
    assert "proxy_pass http://127.0.0.1:15000$dockgate_target;" in rendered_nginx.read_text()


def test_proxies_start_stop_and_fail_closed_without_an_authorizer(
    registry: Registry, tmp_path: Path
) -> None:
    nobody = free_port()  # no authorizer listens here
    with (
        run_envoy(tmp_path / "envoy-a", free_port(), nobody, registry.port) as envoy,
        run_envoy(tmp_path / "envoy-b", free_port(), nobody, registry.port) as second,
        run_nginx(tmp_path / "nginx", free_port(), nobody, registry.port) as nginx,
    ):
        assert _get(envoy.port, "/v2/") == 403
        assert _get(second.port, "/v2/") == 403
        assert _get(nginx.port, "/v2/") == 500
        assert _get(nginx.port, "/elsewhere") == 404
        processes = (envoy.process, second.process, nginx.process)
    assert all(process.poll() is not None for process in processes)
    assert _get(nginx.port, "/v2/") is None


def _get(port: int, path: str) -> int | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        connection.close()
