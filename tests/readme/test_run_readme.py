"""The README runner on small repositories: what passes, and each way a snippet can fail."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.readme.run_readme import SnippetError, main, run_readme

FENCE = "```"


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def _repository(root: Path, readme: str) -> Path:
    """A committed repository holding `readme` and a .gitignore of build/."""
    source = root / "source"
    source.mkdir()
    (source / "README.md").write_text(readme)
    (source / ".gitignore").write_text("build/\n")
    _git(source, "init", "--quiet")
    _git(source, "add", "--all")
    _git(source, "commit", "--quiet", "--message", "readme")
    return source


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _listens(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _sh(*lines: str, marker: str = "") -> str:
    head = [f"<!-- readme-test: {marker} -->"] if marker else []
    return "\n".join([*head, f"{FENCE}sh", *lines, FENCE, ""])


@pytest.fixture
def port() -> Iterator[int]:
    chosen = _free_port()
    yield chosen
    assert not _listens(chosen), "the runner left a server running"


def test_a_readme_that_does_what_it_shows_passes(tmp_path: Path, port: int) -> None:
    fetch = (
        f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/').status)"
    )
    readme = "\n".join(
        [
            "# A project",
            _sh(
                f"exec python3 -m http.server --bind 127.0.0.1 {port}",
                marker=f"background=web port={port}",
            ),
            "Ask it:",
            _sh(f'python3 -c "{fetch}"', "# 200", "echo done"),
            "<!-- readme-test: stop=web -->",
            _sh(
                "mkdir -p build && install -m 600 /dev/null build/secret",
                "echo s3cret > build/secret",
                "echo $HOME",
                marker="secret=build/secret",
            ),
            "<!-- readme-test: output -->",
            f"{FENCE}text",
            ".../home",
            FENCE,
            _sh("exit 3", marker="status=3"),
        ]
    )
    assert run_readme(_repository(tmp_path, readme), worktree=False, keep=False) == 0


@pytest.mark.parametrize(
    ("readme", "message"),
    [
        (_sh("echo Allowed", "# Denied"), "README.md line 1: shown output not printed"),
        (
            _sh("echo one; echo two")
            + "<!-- readme-test: output -->\n"
            + f"{FENCE}text\none\n{FENCE}\n",
            "README.md line 5: the output shown is not what line 1 prints on stdout",
        ),
        (_sh("echo start", "false", "echo never"), "README.md line 1: exit status 1, expected 0"),
        (_sh("true", marker="status=1"), "README.md line 2: exit status 0, expected 1"),
        (_sh("sleep 5", marker="timeout=0.2"), "README.md line 2: still running after 0 s"),
        (_sh("echo $UNSET_VARIABLE"), "exit status 1"),  # a typo in a variable fails too
        (_sh("echo hi > notes.txt"), "snippets wrote or changed files git does not ignore"),
        (_sh("echo hi >> README.md"), "git does not ignore:\n M README.md"),
        (
            _sh("mkdir -p build && echo s3cret > build/key", marker="secret=build/key"),
            "the secret `build/key` has mode 0644, not 0600",
        ),
        (
            _sh("install -m 600 /dev/null key", marker="secret=key"),
            "the secret `key` is not git-ignored",
        ),
        (_sh("true", marker="secret=build/key"), "the secret `build/key` was not written"),
        (
            _sh("exit 4", marker="background=gone port=1"),
            "README.md line 2: `gone` exited with 4 before listening",
        ),
    ],
    ids=[
        "inline-output",
        "output-block",
        "errexit",
        "status",
        "timeout",
        "nounset",
        "untracked-file",
        "changed-file",
        "secret-mode",
        "secret-not-ignored",
        "secret-missing",
        "background-exits",
    ],
)
def test_a_snippet_that_does_not_do_what_the_readme_says_fails(
    tmp_path: Path, readme: str, message: str
) -> None:
    source = _repository(tmp_path, readme)
    with pytest.raises(SnippetError) as raised:
        run_readme(source, worktree=False, keep=False)
    assert message in str(raised.value)


def test_a_background_block_that_never_listens_is_stopped(tmp_path: Path, port: int) -> None:
    readme = _sh("exec sleep 60", marker=f"background=slow port={port} timeout=0.5")
    with pytest.raises(SnippetError, match=r"`slow` not listening on [0-9]+ after 0 s"):
        run_readme(_repository(tmp_path, readme), worktree=False, keep=False)


def test_a_busy_port_is_refused_before_anything_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        readme = _sh(f"touch {marker}") + _sh(
            f"exec python3 -m http.server --bind 127.0.0.1 {taken}",
            marker=f"background=web port={taken}",
        )
        with pytest.raises(SnippetError) as raised:
            run_readme(_repository(tmp_path, readme), worktree=False, keep=False)
    assert f"port {taken} on 127.0.0.1 is in use, and README.md line 5 (`web`) needs it" in str(
        raised.value
    )
    assert not marker.exists()


def test_a_server_must_be_stopped_before_another_takes_its_port(tmp_path: Path, port: int) -> None:
    serve = f"exec python3 -m http.server --bind 127.0.0.1 {port}"
    readme = _sh(serve, marker=f"background=one port={port}") + _sh(
        serve, marker=f"background=two port={port}"
    )
    with pytest.raises(SnippetError, match=f"port {port} on 127.0.0.1 is in use"):
        run_readme(_repository(tmp_path, readme), worktree=False, keep=False)


def test_worktree_tests_uncommitted_changes(tmp_path: Path) -> None:
    source = _repository(tmp_path, _sh("echo old", "# new"))
    (source / "README.md").write_text(_sh("echo new", "# new"))
    (source / "extra.txt").write_text("untracked, not ignored: copied\n")
    assert run_readme(source, worktree=True, keep=False) == 0
    with pytest.raises(SnippetError, match="shown output not printed"):
        run_readme(source, worktree=False, keep=False)


def test_main_reports_a_failure_in_one_line_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _repository(tmp_path, _sh("true", marker="colour=red"))
    monkeypatch.setattr("tests.readme.run_readme.REPO", source)
    assert main([]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "readme: README.md line 1: unknown marker key `colour`"
    )
