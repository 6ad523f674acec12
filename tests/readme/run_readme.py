"""Run every README snippet in order on a fresh clone and check the output it shows.

    .venv/bin/python -m tests.readme.run_readme [--worktree] [--keep]

The clone lives in a temporary directory with its own HOME; the snippets run there as a reader
would type them (the conventions are in `tests/readme/snippets.py`). At the end nothing may be left
running and `git status` in the clone must be clean: every file a snippet wrote is git-ignored.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from tests.readme.snippets import ReadmeError, Run, Skip, Step, Stop, find_groups, match_whole
from tests.readme.snippets import parse_readme as parse_steps

REPO = Path(__file__).resolve().parents[2]
STOP_SECONDS = 20.0
PORT_POLL_SECONDS = 0.1
# what a reader's shell would pass on: the network, pip's configuration, the locale, the user
_PASSED_ON = (
    "USER",
    "LOGNAME",
    "CI",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
)


class SnippetError(Exception):
    """A snippet did not do what the README says; the message says where and what."""


@dataclass
class Background:
    """A background block that is running: its process group, ports and log."""

    run: Run
    process: subprocess.Popen[bytes]
    log: Path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="run_readme", description="run every README snippet in order on a fresh clone"
    )
    parser.add_argument(
        "--worktree",
        action="store_true",
        help="test the working tree as it is (uncommitted changes too), not the last commit",
    )
    parser.add_argument("--keep", action="store_true", help="keep the clone and its logs")
    arguments = parser.parse_args(argv)
    try:
        return run_readme(REPO, worktree=arguments.worktree, keep=arguments.keep)
    except (SnippetError, ReadmeError) as problem:
        print(f"readme: {problem}", file=sys.stderr)
        return 1


def run_readme(source: Path, *, worktree: bool, keep: bool) -> int:
    """Clone `source` (or copy its working tree), run its README's steps, check the clone after."""
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="dockgate-readme-"))
    clone = scratch / "dockgate"
    try:
        if worktree:
            _copy_worktree(source, clone)
        else:
            if _git(source, "status", "--porcelain").strip():
                print(
                    "readme: note: testing the last commit; the working tree has changes "
                    "(--worktree tests them)",
                    file=sys.stderr,
                )
            _clone(source, clone)
        steps = parse_steps((clone / "README.md").read_text())
        _check_ports_free(steps)
        print(f"readme: {len(steps)} steps in {clone}", file=sys.stderr)
        _run_steps(steps, clone, _environment(scratch))
        left = _git(clone, "status", "--porcelain", "--untracked-files=all")
        if left.strip():
            raise SnippetError(f"snippets wrote or changed files git does not ignore:\n{left}")
    finally:
        if keep:
            print(f"readme: kept {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"readme: every snippet ran as written ({time.monotonic() - started:.0f} s)")
    return 0


def _run_steps(steps: Sequence[Step], clone: Path, env: dict[str, str]) -> None:
    logs = clone.parent / "logs"
    logs.mkdir()
    running: dict[str, Background] = {}
    try:
        for number, step in enumerate(steps, start=1):
            began = time.monotonic()
            if isinstance(step, Skip):
                print(f"readme: line {step.block.line}: skipped ({step.reason})", file=sys.stderr)
                continue
            if isinstance(step, Stop):
                _stop(running.pop(step.name))
                what = f"stopped `{step.name}`"
                line = step.line
            elif step.background is not None:
                running[step.background] = _start(step, clone, env, logs / f"{number}.log")
                what = f"`{step.background}` listening on {', '.join(map(str, step.ports))}"
                line = step.block.line
            else:
                _run_foreground(step, clone, env, logs / f"{number}")
                what = f"{step.block.language} ok"
                line = step.block.line
            print(
                f"readme: line {line}: {what} ({time.monotonic() - began:.1f} s)", file=sys.stderr
            )
    except SnippetError:
        for background in running.values():
            print(_log_tail(background), file=sys.stderr)
        raise
    finally:
        for background in running.values():
            _stop(background)


def _run_foreground(run: Run, clone: Path, env: dict[str, str], prefix: Path) -> None:
    where = f"README.md line {run.block.line}"
    out, err = prefix.with_suffix(".out"), prefix.with_suffix(".err")
    argv, script = _command(run, prefix)
    with script.open("rb") as stdin, out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            cwd=clone,
            env=env,
            start_new_session=True,
        )
        try:
            process.wait(timeout=run.timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
            raise SnippetError(
                f"{where}: still running after {run.timeout:.0f} s\n{_report(run, out, err)}"
            ) from None
        finally:
            # whatever the block started and left behind goes with it
            _signal_group(process.pid, signal.SIGKILL)
    if process.returncode != run.status:
        raise SnippetError(
            f"{where}: exit status {process.returncode}, expected {run.status}\n"
            f"{_report(run, out, err)}"
        )
    printed = out.read_text(errors="replace").splitlines()
    missing = find_groups(run.expected, printed)
    if missing is not None:
        raise SnippetError(f"{where}: shown output {missing}\n{_report(run, out, err)}")
    for output in run.outputs:
        stream = out if output.stream == "stdout" else err
        if not match_whole(output.block.text.splitlines(), stream.read_text().splitlines()):
            raise SnippetError(
                f"README.md line {output.block.line}: the output shown is not what line "
                f"{run.block.line} prints on {output.stream}:\n{output.block.text}"
                f"{_report(run, out, err)}"
            )
    for secret in run.secrets:
        _check_secret(where, clone, secret)


def _command(run: Run, prefix: Path) -> tuple[list[str], Path]:
    """The command that runs the block, and the file it reads as standard input.

    The block is written to a file first: read from standard input, a command inside it that
    reads standard input would eat the rest of the script.
    """
    if run.block.language == "python":
        script = prefix.with_suffix(".py")
        script.write_text(run.block.text)
        # `python -` as the README's heredocs do: the current directory is on sys.path
        return [".venv/bin/python", "-"], script
    script = prefix.with_suffix(".sh")
    script.write_text(run.block.text)
    return ["bash", "-euo", "pipefail", str(script)], Path(os.devnull)


def _check_secret(where: str, clone: Path, secret: str) -> None:
    path = clone / secret
    if not path.is_file():
        raise SnippetError(f"{where}: the secret `{secret}` was not written")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SnippetError(f"{where}: the secret `{secret}` has mode {mode:04o}, not 0600")
    ignored = subprocess.run(
        ["git", "check-ignore", "--quiet", secret], cwd=clone, check=False
    ).returncode
    if ignored != 0:
        raise SnippetError(f"{where}: the secret `{secret}` is not git-ignored")


def _start(run: Run, clone: Path, env: dict[str, str], log: Path) -> Background:
    _require_free(run, run.ports)
    argv, script = _command(run, log.with_suffix(""))
    with script.open("rb") as stdin, log.open("wb") as output:
        process = subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=clone,
            env=env,
            start_new_session=True,
        )
    background = Background(run, process, log)
    deadline = time.monotonic() + run.timeout
    while not all(_listens(port) for port in run.ports):
        if process.poll() is not None:
            _stop(background)  # what it started may outlive it
            raise SnippetError(
                f"README.md line {run.block.line}: `{run.background}` exited with "
                f"{process.returncode} before listening\n{_log_tail(background)}"
            )
        if time.monotonic() > deadline:
            _stop(background)
            raise SnippetError(
                f"README.md line {run.block.line}: `{run.background}` not listening on "
                f"{', '.join(map(str, run.ports))} after {run.timeout:.0f} s\n"
                f"{_log_tail(background)}"
            )
        time.sleep(PORT_POLL_SECONDS)
    return background


def _stop(background: Background) -> None:
    """SIGTERM the group (as a reader's Ctrl-C would end it), then wait until its ports close."""
    process = background.process
    _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_SECONDS)
    # the leader (bash, make) may end before what it started: wait for the ports too
    while any(_listens(port) for port in background.run.ports) and time.monotonic() < deadline:
        time.sleep(PORT_POLL_SECONDS)
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()


def _check_ports_free(steps: Sequence[Step]) -> None:
    for step in steps:
        if isinstance(step, Run) and step.background is not None:
            _require_free(step, step.ports)


def _require_free(run: Run, ports: Sequence[int]) -> None:
    for port in ports:
        if _listens(port):
            raise SnippetError(
                f"port {port} on 127.0.0.1 is in use, and README.md line {run.block.line} "
                f"(`{run.background}`) needs it: stop what listens there, then run again"
            )


def _listens(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _environment(scratch: Path) -> dict[str, str]:
    """A fresh terminal's environment, with HOME and every per-user directory under `scratch`."""
    home = scratch / "home"
    env = {name: os.environ[name] for name in _PASSED_ON if name in os.environ}
    env.update({name: value for name, value in os.environ.items() if name.startswith("PIP_")})
    env.update(
        {
            "PATH": _path(),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "TMPDIR": str(home / "tmp"),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_RUNTIME_DIR": str(home / "run"),
            # as root, skopeo keeps its blob-info cache in /var/lib/containers and its logins in
            # /run/containers whatever HOME says; with this it keeps them under XDG_DATA_HOME and
            # XDG_RUNTIME_DIR, so that runs share nothing (not REGISTRY_AUTH_FILE: every
            # REGISTRY_* variable is configuration to docker-registry)
            "_CONTAINERS_ROOTLESS_UID": str(os.getuid() or 1000),
        }
    )
    # the reader's pip cache and configuration make `make run`'s install what it would be for them
    real_home = Path.home()
    env.setdefault(
        "PIP_CACHE_DIR",
        str(Path(os.environ.get("XDG_CACHE_HOME", real_home / ".cache")) / "pip"),
    )
    for config in (real_home / ".config" / "pip" / "pip.conf", real_home / ".pip" / "pip.conf"):
        if config.is_file():
            env.setdefault("PIP_CONFIG_FILE", str(config))
    for directory in ("tmp", "run", ".config", ".cache", ".local/share"):
        (home / directory).mkdir(parents=True, exist_ok=True, mode=0o700)
    return env


def _path() -> str:
    """PATH without any virtualenv's bin (a reader's fresh shell has none), with the sbin dirs."""
    venv = os.environ.get("VIRTUAL_ENV")
    ours = str(REPO / ".venv" / "bin")
    entries = [
        entry
        for entry in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
        if entry and entry != ours and not (venv and entry.startswith(venv))
    ]
    for needed in ("/usr/local/sbin", "/usr/sbin", "/sbin"):  # nginx lives in /usr/sbin
        if needed not in entries:
            entries.append(needed)
    return os.pathsep.join(entries)


def _clone(source: Path, clone: Path) -> None:
    """A clone of `source` at its HEAD commit (whatever branch, or none, that is on)."""
    head = _git(source, "rev-parse", "HEAD").strip()
    _git(clone.parent, "clone", "--quiet", "--no-checkout", str(source), str(clone))
    _git(clone, "checkout", "--quiet", "--detach", head)


def _copy_worktree(source: Path, clone: Path) -> None:
    """A clone of `source` whose last commit is the working tree, uncommitted changes included."""
    _clone(source, clone)
    listed = _git(source, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, listed.split("\0")):
        origin, target = source / name, clone / name
        if origin.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)
        elif target.exists() and not origin.exists():
            target.unlink()
    _git(clone, "add", "--all")
    _git(
        clone,
        "-c",
        "user.name=readme",
        "-c",
        "user.email=readme@localhost",
        "-c",
        "commit.gpgsign=false",
        "commit",
        "--quiet",
        "--allow-empty",
        "--message",
        "the working tree",
    )


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SnippetError(f"git {' '.join(args)} in {cwd}: {done.stderr.strip()}")
    return done.stdout


def _report(run: Run, out: Path, err: Path) -> str:
    return (
        f"--- the block ({run.block.language}):\n{run.block.text}"
        f"--- stdout:\n{out.read_text(errors='replace')}"
        f"--- stderr:\n{err.read_text(errors='replace')}---"
    )


def _log_tail(background: Background, lines: int = 20) -> str:
    text = background.log.read_text(errors="replace").splitlines()[-lines:]
    return f"--- `{background.run.background}` log (last {lines} lines):\n" + "\n".join(text)


if __name__ == "__main__":
    sys.exit(main())
