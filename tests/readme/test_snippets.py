"""The README's conventions: markers parsed, shown output found, the sample fleet named."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.readme.snippets import (
    Block,
    ReadmeError,
    Run,
    Skip,
    Stop,
    expected_groups,
    find_groups,
    line_matches,
    match_whole,
    parse_readme,
)

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "server" / "dockgate_server" / "data" / "sample-bundle.json"
FENCE = "```"


def _readme(*parts: str) -> str:
    return "\n".join(parts) + "\n"


def _sh(*lines: str, language: str = "sh") -> str:
    return "\n".join([f"{FENCE}{language}", *lines, FENCE])


def test_blocks_run_in_order_and_shown_blocks_do_not() -> None:
    steps = parse_readme(
        _readme(
            "# Title",
            _sh("echo one"),
            "text between",
            _sh('print("two")', language="python"),
            _sh('{"a": 1}', language="json"),
            _sh("not run", language=""),
        )
    )
    assert [type(step) for step in steps] == [Run, Run]
    first, second = steps
    assert isinstance(first, Run) and isinstance(second, Run)
    assert (first.block.line, first.block.language, first.block.text) == (2, "sh", "echo one\n")
    assert (second.block.line, second.block.language) == (6, "python")


def test_markers_background_stop_status_secret_skip() -> None:
    steps = parse_readme(
        _readme(
            "<!-- readme-test: background=server port=50051 port=9464 timeout=300 -->",
            _sh("make run"),
            "<!-- readme-test: status=1 timeout=5 secret=.dockgate/password.txt -->",
            "",
            _sh("false"),
            "<!-- readme-test: skip make test runs this -->",
            _sh("make test"),
            "<!-- readme-test: stop=server -->",
        )
    )
    server, failing, skipped, stop = steps
    assert isinstance(server, Run)
    assert (server.background, server.ports, server.timeout) == ("server", (50051, 9464), 300.0)
    assert isinstance(failing, Run)
    assert (failing.status, failing.timeout, failing.secrets) == (
        1,
        5.0,
        (".dockgate/password.txt",),
    )
    assert failing.background is None
    assert isinstance(skipped, Skip) and skipped.reason == "make test runs this"
    assert stop == Stop(14, "server")


def test_an_output_block_belongs_to_the_run_block_before_it() -> None:
    steps = parse_readme(
        _readme(
            _sh("echo hello; echo oops >&2"),
            "It prints:",
            "<!-- readme-test: output -->",
            _sh("hello", language="text"),
            "<!-- readme-test: output=stderr -->",
            _sh("oops", language=""),
        )
    )
    (run,) = steps
    assert isinstance(run, Run)
    assert [(o.block.text, o.stream) for o in run.outputs] == [
        ("hello\n", "stdout"),
        ("oops\n", "stderr"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_readme("<!-- readme-test: colour=red -->", _sh("true")), "unknown marker key `colour`"),
        (_readme("<!-- readme-test: -->", _sh("true")), "an empty marker"),
        (_readme("<!-- readme-test: skip -->", _sh("true")), "`skip` needs a reason"),
        (_readme("<!-- readme-test: status=1 -->", "words", _sh("true")), "right before"),
        (_readme(_sh("true"), "<!-- readme-test: status=1 -->"), "no block after it"),
        (_readme("<!-- readme-test: status=x -->", _sh("true")), "`status=x` is not a number"),
        (_readme("<!-- readme-test: status=1 status=2 -->", _sh("true")), "given twice"),
        (_readme("<!-- readme-test: background=s -->", _sh("serve")), "needs `port=`"),
        (_readme("<!-- readme-test: port=80 -->", _sh("true")), "for background blocks"),
        (
            _readme("<!-- readme-test: background=s port=1 -->", _sh("serve", "# ready")),
            "shows no output",
        ),
        (_readme("<!-- readme-test: stop=s -->"), "names no background block above"),
        (
            _readme(
                "<!-- readme-test: background=s port=1 -->",
                _sh("serve"),
                "<!-- readme-test: background=s port=2 -->",
                _sh("serve"),
            ),
            "already running",
        ),
        (_readme("<!-- readme-test: output -->", _sh("hi", language="text")), "follows a fore"),
        (_readme("<!-- readme-test: output -->", _sh("true")), "marks a shown block"),
        (
            _readme(_sh("true"), "<!-- readme-test: output=both -->", _sh("x", language="text")),
            "stdout or stderr",
        ),
        (_readme(_sh("echo", language="bash")), "block language `bash` is neither run"),
        (_readme("- item", "  ```sh", "  echo", "  ```"), "indented fence"),
        (_readme("```sh", "echo"), "never closed"),
    ],
)
def test_broken_conventions_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ReadmeError, match=r"README\.md line [0-9]+: ") as raised:
        parse_readme(text)
    assert message in str(raised.value)


def test_comments_right_after_a_command_are_its_output() -> None:
    block = Block(
        1,
        "sh",
        "\n".join(
            [
                "# an explanation above a command",
                "# over two lines",
                "make thing --flag \\",
                "    --more   # a trailing comment",
                "# first output line",
                "#   indented output",
                "",
                "# another explanation",
                "other-command",
                "# its output",
                "python - <<'PY'",
                'print("x")  # x',
                "# a python comment inside the heredoc",
                "PY",
                "# after the heredoc",
            ]
        ),
    )
    assert expected_groups(block) == (
        ("first output line", "  indented output"),
        ("its output",),
        ("x",),
        ("after the heredoc",),
    )


def test_python_blocks_show_output_on_print_lines_only() -> None:
    block = Block(1, "python", 'x = 1\n# a comment\nprint(x)  # 1\nprint("no comment")\n')
    assert expected_groups(block) == (("1",),)


@pytest.mark.parametrize(
    ("pattern", "line", "matches"),
    [
        ("Allowed", "Allowed", True),
        ("Allowed", "  Allowed  ", True),
        ("Allowed", "ImplicitlyDenied", False),
        ("Allowed", "Allowed!", False),
        (
            '{"arn": "x", "expiresAt": "...", "revision": 4}',
            '{"arn": "x", "expiresAt": "T", "revision": 4}',
            True,
        ),
        ('{"arn": "x", ...}', '{"arn": "y", "revision": 4}', False),
        ("a...b...c", "abc", True),
        ("a.b", "axb", False),  # no regular expressions: a dot is a dot
        ("...", "anything", True),
    ],
)
def test_an_ellipsis_stands_for_any_text(pattern: str, line: str, matches: bool) -> None:
    assert line_matches(pattern, line) is matches


def test_groups_match_consecutive_lines_in_order() -> None:
    lines = ["one", "two", "three", "four"]
    assert find_groups([["two", "three"], ["four"]], lines) is None
    assert find_groups([["one"], ["...", "four"]], lines) is None
    missing = find_groups([["one", "three"]], lines)
    assert missing is not None and "one\n    three" in missing
    assert find_groups([["three"], ["two"]], lines) is not None  # out of order
    assert find_groups([["two"], ["two"]], lines) is not None  # one line matches once


def test_an_output_block_is_the_whole_output() -> None:
    lines = ["head", "a", "b", "tail", ""]
    assert match_whole(["head", "...", "tail"], lines)
    assert match_whole(["...", "tail", ""], lines)
    assert not match_whole(["head", "a"], lines)
    assert not match_whole(["a", "b", "tail"], lines)


def test_the_committed_readme_follows_the_conventions() -> None:
    steps = parse_readme((REPO / "README.md").read_text())
    runs = [step for step in steps if isinstance(step, Run)]
    assert runs[0].block.text.startswith("make run"), "the first command is `make run`"
    assert runs[0].background is not None
    started = {run.background for run in runs if run.background is not None}
    stopped = {step.name for step in steps if isinstance(step, Stop)}
    # `make run` must be stopped before the registry section's servers take its ports
    assert "make-run" in stopped
    assert stopped <= started


def test_every_principal_the_readme_names_is_in_the_sample_fleet() -> None:
    known = _sample_principals()
    text = (REPO / "README.md").read_text()
    named = set(re.findall(r"arn:aws:(?:iam|sts)::\d{12}:[\w+=,.@/-]*\w", text))
    assert named
    unknown = sorted(arn for arn in named if _principal_key(arn) not in known)
    assert unknown == [], "principals the sample fleet does not have"


def _principal_key(arn: str) -> str:
    """The IAM entity an ARN names: an assumed-role session is its role."""
    session = re.fullmatch(r"arn:aws:sts::(\d{12}):assumed-role/([^/]+)/.+", arn)
    if session:
        return f"arn:aws:iam::{session[1]}:role/{session[2]}"
    return arn


def _sample_principals() -> set[str]:
    bundle = json.loads(SAMPLE.read_text())
    known: set[str] = set()
    for account, contents in bundle["accounts"].items():
        details = contents["authorizationDetails"]
        known.add(f"arn:aws:iam::{account}:root")
        for user in details["UserDetailList"]:
            known.add(f"arn:aws:iam::{account}:user{user['Path']}{user['UserName']}")
        for role in details["RoleDetailList"]:
            known.add(f"arn:aws:iam::{account}:role{role['Path']}{role['RoleName']}")
        known.update(policy["Arn"] for policy in details["Policies"])
    return known
