"""The real peers of the registry adapters (docker-registry, Envoy, nginx, skopeo) for tests."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENVOY_EXAMPLE = REPO / "examples" / "envoy.yaml"
NGINX_EXAMPLE = REPO / "examples" / "nginx.conf"

REGISTRY_BIN = "/usr/bin/docker-registry"
NGINX_BIN = "/usr/sbin/nginx"
SKOPEO_BIN = "/usr/bin/skopeo"
ENVOY_BIN = str(Path(sys.executable).parent / "envoy")

# the ports the shipped examples use; rendering replaces them
ENVOY_DEFAULTS = {"listen": 8080, "authz": 50051, "registry": 5000}
NGINX_DEFAULTS = {"listen": 8081, "auth": 50053, "registry": 5000}

STARTUP_SECONDS = 20.0
STOP_SECONDS = 5.0

Credentials = tuple[str, str]


@dataclass(frozen=True)
class Peer:
    """A running peer: its process (leader of its own process group), port and log file."""

    process: subprocess.Popen[bytes]
    port: int
    workdir: Path
    log: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass(frozen=True)
class Registry(Peer):
    """Debian's docker-registry, without authentication, storing under `storage`."""

    storage: Path

    def repositories(self) -> list[str]:
        """The repository names present in the storage directory (what the registry keeps)."""
        root = self.storage / "docker" / "registry" / "v2" / "repositories"
        if not root.exists():
            return []
        return sorted(
            str(p.parent.relative_to(root)) for p in root.rglob("_manifests") if p.is_dir()
        )


@dataclass(frozen=True)
class Envoy(Peer):
    """Envoy from examples/envoy.yaml, with an admin interface on `admin_port` (loopback)."""

    admin_port: int


@dataclass(frozen=True)
class Nginx(Peer):
    """nginx from examples/nginx.conf, with its prefix (logs/, temp dirs) at `workdir`."""

    @property
    def error_log(self) -> Path:
        return self.workdir / "logs" / "error.log"

    @property
    def access_log(self) -> Path:
        return self.workdir / "logs" / "access.log"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def is_available(program: str) -> bool:
    """Whether `program` (a path or a name on PATH) can be run here."""
    return shutil.which(program) is not None


@contextmanager
def run_registry(workdir: Path) -> Iterator[Registry]:
    """Start docker-registry on a free loopback port, storage under `workdir`; stop it after."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    storage = workdir / "storage"
    config = workdir / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n"
        "  level: info\n"
        "  accesslog:\n"
        "    disabled: true\n"
        "storage:\n"
        "  filesystem:\n"
        f"    rootdirectory: {storage}\n"
        "  delete:\n"
        "    enabled: true\n"
        "http:\n"
        f"  addr: 127.0.0.1:{port}\n"
        "  secret: dockgate-tests-only\n"
    )
    log = workdir / "registry.log"
    # every REGISTRY_* variable is configuration to it: start it with a clean environment
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir)}
    with _spawn([REGISTRY_BIN, "serve", str(config)], log=log, env=env, cwd=workdir) as process:
        _wait_until("docker-registry", process, log, lambda: _http_status(port, "/v2/") == 200)
        yield Registry(process, port, workdir, log, storage)


@contextmanager
def run_envoy(
    workdir: Path, listen_port: int, authz_port: int, registry_port: int
) -> Iterator[Envoy]:
    """Start Envoy from examples/envoy.yaml rendered with these ports; stop it after."""
    workdir.mkdir(parents=True, exist_ok=True)
    admin_port = free_port()
    config = workdir / "envoy.yaml"
    config.write_text(
        render_envoy_config(listen_port, authz_port, registry_port, admin_port=admin_port)
    )
    log = workdir / "envoy.log"
    argv = [
        ENVOY_BIN,
        "-c",
        str(config),
        "--disable-hot-restart",
        "--concurrency",
        "1",
        # with hot restart disabled Envoy opens no shared memory; distinct ids all the same
        "--base-id",
        str(listen_port),
        "--log-level",
        "info",
    ]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "TMPDIR": str(workdir)}
    with _spawn(argv, log=log, env=env, cwd=workdir) as process:
        _wait_until("envoy", process, log, lambda: _http_status(admin_port, "/ready") == 200)
        yield Envoy(process, listen_port, workdir, log, admin_port)


@contextmanager
def run_nginx(
    workdir: Path, listen_port: int, auth_port: int, registry_port: int
) -> Iterator[Nginx]:
    """Start nginx from examples/nginx.conf rendered with these ports, prefix `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "logs").mkdir(exist_ok=True)
    config = workdir / "nginx.conf"
    config.write_text(render_nginx_config(listen_port, auth_port, registry_port))
    log = workdir / "nginx.out"
    argv = [NGINX_BIN, "-p", str(workdir), "-c", str(config), "-g", "daemon off;"]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir)}
    with _spawn(argv, log=log, env=env, cwd=workdir) as process:
        # any answer means it listens (the example answers 404 outside /v2/)
        _wait_until("nginx", process, log, lambda: _http_status(listen_port, "/") is not None)
        yield Nginx(process, listen_port, workdir, log)


def render_envoy_config(
    listen_port: int, authz_port: int, registry_port: int, *, admin_port: int | None = None
) -> str:
    """examples/envoy.yaml with its ports replaced, plus an admin interface on loopback if asked."""
    text = ENVOY_EXAMPLE.read_text()
    for name, port in (("listen", listen_port), ("authz", authz_port), ("registry", registry_port)):
        text = _replace_once(
            text,
            f"port_value: {ENVOY_DEFAULTS[name]} }}",
            f"port_value: {port} }}",
            ENVOY_EXAMPLE,
        )
    if admin_port is not None:
        text += (
            "\nadmin:\n"
            "  address:\n"
            f"    socket_address: {{ address: 127.0.0.1, port_value: {admin_port} }}\n"
        )
    return text


def render_nginx_config(listen_port: int, auth_port: int, registry_port: int) -> str:
    """examples/nginx.conf with its ports replaced (its relative paths stay under the prefix)."""
    text = NGINX_EXAMPLE.read_text()
    text = _replace_once(
        text,
        f"listen 127.0.0.1:{NGINX_DEFAULTS['listen']};",
        f"listen 127.0.0.1:{listen_port};",
        NGINX_EXAMPLE,
    )
    text = _replace_once(
        text,
        f"proxy_pass http://127.0.0.1:{NGINX_DEFAULTS['auth']}/auth;",
        f"proxy_pass http://127.0.0.1:{auth_port}/auth;",
        NGINX_EXAMPLE,
    )
    text = _replace_once(  # the catalog, which Dockgate answers itself
        text,
        f"proxy_pass http://127.0.0.1:{NGINX_DEFAULTS['auth']};",
        f"proxy_pass http://127.0.0.1:{auth_port};",
        NGINX_EXAMPLE,
    )
    return _replace_once(
        text,
        f"proxy_pass http://127.0.0.1:{NGINX_DEFAULTS['registry']}$",
        f"proxy_pass http://127.0.0.1:{registry_port}$",
        NGINX_EXAMPLE,
    )


def validate_envoy_config(config: Path) -> subprocess.CompletedProcess[str]:
    """`envoy --mode validate`: parses the file and builds every listener, cluster and filter."""
    return subprocess.run(
        [ENVOY_BIN, "--mode", "validate", "-c", str(config), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(config.parent)},
    )


def validate_nginx_config(prefix: Path, config: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` with `prefix` (given a logs/ directory): syntax, paths and listen addresses."""
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [NGINX_BIN, "-t", "-p", str(prefix), "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(prefix)},
    )


@dataclass(frozen=True)
class SkopeoResult:
    """What one skopeo command did: tests assert on these (nothing raises)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def __str__(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\n-> {self.returncode}\n"
            f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        )


class Skopeo:
    """skopeo with private state under `home`: no machine-wide config, auth or blob-info cache.

    Its blob-info cache (which turns later pushes of a known layer into cross-repository mount
    attempts) lives in this state, so a fresh `Skopeo` never tries a mount and one instance
    used for two repositories of the same registry does. With `debug`, stderr lists each HTTP
    request skopeo makes.
    """

    def __init__(self, home: Path, *, debug: bool = False, timeout: float = 120.0) -> None:
        self.home = home
        self.debug = debug
        self.timeout = timeout
        for sub in ("home/.config/containers", "tmp", "run", "data", "cache", "registries.d"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        self.policy = home / "policy.json"
        self.policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}\n')
        # found at $HOME/.config/containers/registries.conf instead of /etc/containers's
        (home / "home/.config/containers/registries.conf").write_text(
            "unqualified-search-registries = []\n"
        )

    @property
    def blob_info_cache(self) -> Path:
        return self.home / "data" / "containers" / "cache" / "blob-info-cache-v1.boltdb"

    def env(self) -> dict[str, str]:
        home = self.home
        return {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home / "home"),
            "TMPDIR": str(home / "tmp"),
            "XDG_RUNTIME_DIR": str(home / "run"),
            "XDG_CONFIG_HOME": str(home / "home" / ".config"),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CACHE_HOME": str(home / "cache"),
            "REGISTRY_AUTH_FILE": str(home / "auth.json"),
            # as root, containers/image keeps its blob-info cache in /var/lib/containers/cache
            # whatever HOME says; it takes this variable for the real uid and then uses
            # $XDG_DATA_HOME/containers/cache (the variable podman sets for rootless runs)
            "_CONTAINERS_ROOTLESS_UID": "1000",
        }

    def run(self, *args: str) -> SkopeoResult:
        """Run `skopeo ARGS` with this state; never raises on a failing command."""
        argv = [
            SKOPEO_BIN,
            *(["--debug"] if self.debug else []),
            "--policy",
            str(self.policy),
            "--registries.d",
            str(self.home / "registries.d"),
            "--tmpdir",
            str(self.home / "tmp"),
            *args,
        ]
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
                env=self.env(),
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as timeout:
            return SkopeoResult(tuple(argv), -1, _text(timeout.stdout), _text(timeout.stderr))
        return SkopeoResult(tuple(argv), done.returncode, done.stdout, done.stderr)

    def copy(
        self,
        source: str,
        destination: str,
        *,
        src_creds: Credentials | None = None,
        dest_creds: Credentials | None = None,
    ) -> SkopeoResult:
        """`skopeo copy SOURCE DESTINATION`, plain HTTP allowed on both sides."""
        return self.run(
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            *_creds("--src-", src_creds),
            *_creds("--dest-", dest_creds),
            source,
            destination,
        )

    def push(
        self, layout: Path, tag: str, address: str, name: str, creds: Credentials | None = None
    ) -> SkopeoResult:
        """oci:LAYOUT:TAG → docker://ADDRESS/NAME:TAG."""
        return self.copy(
            f"oci:{layout}:{tag}", f"docker://{address}/{name}:{tag}", dest_creds=creds
        )

    def pull(
        self, address: str, name: str, reference: str, into: str, creds: Credentials | None = None
    ) -> SkopeoResult:
        """docker://ADDRESS/NAME:REF (or @sha256:…) → INTO (an `oci:DIR:TAG` or `dir:DIR`)."""
        return self.copy(_docker(address, name, reference), into, src_creds=creds)

    def inspect(
        self,
        address: str,
        name: str,
        reference: str,
        creds: Credentials | None = None,
        *,
        tags: bool = True,
    ) -> SkopeoResult:
        """`skopeo inspect` (JSON on stdout); it also lists the tags unless `tags` is false."""
        return self.run(
            "inspect",
            "--tls-verify=false",
            *_creds("--", creds),
            *([] if tags else ["--no-tags"]),
            _docker(address, name, reference),
        )

    def inspect_raw(
        self, address: str, name: str, reference: str, creds: Credentials | None = None
    ) -> SkopeoResult:
        """`skopeo inspect --raw`: the manifest as the registry stores it."""
        return self.run(
            "inspect",
            "--raw",
            "--tls-verify=false",
            *_creds("--", creds),
            _docker(address, name, reference),
        )

    def list_tags(self, address: str, name: str, creds: Credentials | None = None) -> SkopeoResult:
        """`skopeo list-tags` (JSON {"Repository", "Tags"} on stdout)."""
        return self.run(
            "list-tags", "--tls-verify=false", *_creds("--", creds), f"docker://{address}/{name}"
        )

    def delete(
        self, address: str, name: str, reference: str, creds: Credentials | None = None
    ) -> SkopeoResult:
        """`skopeo delete`: by tag it reads the manifest for its digest, then deletes that."""
        return self.run(
            "delete", "--tls-verify=false", *_creds("--", creds), _docker(address, name, reference)
        )


def _docker(address: str, name: str, reference: str) -> str:
    separator = "@" if reference.startswith("sha256:") else ":"
    return f"docker://{address}/{name}{separator}{reference}"


def _creds(prefix: str, creds: Credentials | None) -> list[str]:
    # no flag: the private auth files hold nothing. Either way (--no-creds too) skopeo 1.9 answers
    # a Basic challenge with `Authorization: Basic Og==`, an empty user and password
    if creds is None:
        return []
    username, password = creds
    return [f"{prefix}username={username}", f"{prefix}password={password}"]


def _text(output: str | bytes | None) -> str:
    if output is None:
        return ""
    return output.decode(errors="replace") if isinstance(output, bytes) else output


def _replace_once(text: str, old: str, new: str, source: Path) -> str:
    if text.count(old) != 1:
        raise ValueError(f"{source}: expected `{old}` exactly once, found {text.count(old)}")
    return text.replace(old, new)


@contextmanager
def _spawn(
    argv: Sequence[str], *, log: Path, env: dict[str, str], cwd: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `argv` as the leader of a new process group; on exit stop the whole group."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the group, SIGKILL what remains after a grace period, and reap the leader."""
    _signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()
    # children left behind by a leader that died first (nginx workers) share its group id
    _signal_group(process.pid, signal.SIGKILL)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _wait_until(
    name: str,
    process: subprocess.Popen[bytes],
    log: Path,
    ready: Callable[[], bool],
) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{_tail(log)}")
        if ready():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name} not ready after {STARTUP_SECONDS}s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _http_status(port: int, path: str) -> int | None:
    """The status of `GET path` on 127.0.0.1:port, or None if nothing answers (yet)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()
