"""The glob benchmark script runs and prints its figures (tests never assert on time)."""

from __future__ import annotations

import re

import pytest

from dockgate_server.bench.glob import HOSTILE, ORDINARY, main, translate

FIGURE = r"\d+\.\d+ (?:s|ms|us)"


def test_the_script_prints_every_figure_and_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--number", "2", "--repeat", "1", "--regex-budget", "0.001"])

    assert code == 0
    out = capsys.readouterr().out
    for case in (*ORDINARY, *HOSTILE):
        pattern = re.escape(case.pattern)
        row = re.search(rf"^  {case.label}\s+{pattern}\s+{FIGURE}\s+\d+\.\d+x$", out, re.M)
        assert row, f"no glob figure for `{case.pattern}`:\n{out}"
    for case in HOSTILE:
        pattern = re.escape(case.pattern)
        row = re.search(rf"^  {pattern}\s+\d+\s+{FIGURE}\s+{FIGURE}\s+\d+x$", out, re.M)
        assert row, f"no re figure for `{case.pattern}`:\n{out}"


def test_the_regex_baseline_is_the_naive_translation() -> None:
    regex = translate("a*b?c.")

    assert regex.pattern == r"a.*b.c\."
    assert regex.fullmatch("a\nxbyc.")
    assert not regex.fullmatch("abc.")
