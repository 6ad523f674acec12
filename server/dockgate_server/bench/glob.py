"""Benchmark hostile wildcard patterns against ordinary ones in the policy glob matcher.

Run: `python -m dockgate_server.bench.glob` (or `make bench-glob`). Each pattern is matched against
a 2,048-character subject it does not match; each figure is the best of several timeit repeats,
printed next to the figure of an ordinary pattern (`*ab*`) on a subject of the same length,
measured in the same run, and their ratio. The design's "linear-time matching" rule says no policy
text ever becomes a backtracking regex; the second table shows why: Python's `re` on the same
patterns (`*` translated to `.*`, `?` to `.`), on subjects grown only while the next size's
predicted cost stays under a budget, next to the glob matcher on the same subject. The whole
script takes a few seconds."""

from __future__ import annotations

import argparse
import math
import re
import time
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from dockgate_server.policy.glob import compile_glob

__all__ = ["Case", "main", "time_glob", "time_regex_growth", "translate"]

SUBJECT_LENGTH = 2048

ORDINARY_ARN = "arn:aws:ecr:*:*:repository/team-a/*"
ARN_SUBJECT = "arn:aws:ecr:us-east-1:111122223333:repository/team-b/"


@dataclass(frozen=True, slots=True)
class Case:
    label: str
    pattern: str
    subject: Callable[[int], str]
    """the subject of a given length, which the pattern does not match"""


def _letters(length: int) -> str:
    return "a" * length


def _arn(length: int) -> str:
    return ARN_SUBJECT + "x" * (length - len(ARN_SUBJECT))


BASELINE = Case("ordinary", "*ab*", _letters)
ORDINARY = (BASELINE, Case("ordinary", ORDINARY_ARN, _arn))
HOSTILE = (
    Case("hostile", "*a*a*a*a*a*a*a*a*a*a*b", _letters),
    Case("hostile", "a*a*a*a*a*a*a*a*c", _letters),
    Case("hostile", "*?*?*?*?*?*b", _letters),
    # the tail matches, so the failure is found only after every middle piece has been placed
    Case("hostile", "*a*a*a*a*a*a*a*a*a*a*b*a", _letters),
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--number", type=int, default=2000, help="matches per timing repeat")
    parser.add_argument("--repeat", type=int, default=5, help="repeats; the best one counts")
    parser.add_argument(
        "--regex-budget",
        type=float,
        default=0.1,
        help="seconds one `re` match may take before the subject stops growing",
    )
    arguments = parser.parse_args(argv)
    number, repeat = max(1, arguments.number), max(1, arguments.repeat)

    print(
        f"glob matcher, {SUBJECT_LENGTH}-character subjects that do not match, "
        f"best of {repeat} x {number} matches"
    )
    baseline = time_glob(BASELINE, SUBJECT_LENGTH, number, repeat)
    print(f"  {'':<10}{'pattern':<36}{'per match':>12}{'vs ' + BASELINE.pattern:>12}")
    for case in (*ORDINARY, *HOSTILE):
        seconds = baseline if case is BASELINE else time_glob(case, SUBJECT_LENGTH, number, repeat)
        ratio = seconds / baseline
        print(f"  {case.label:<10}{case.pattern:<36}{_duration(seconds):>12}{ratio:>11.2f}x")

    print(
        f"\nre (backtracking) on the translated hostile patterns: the subject grows until one "
        f"match would take over {_duration(arguments.regex_budget)}"
    )
    print(f"  {'pattern':<28}{'length':>8}{'re':>12}{'glob':>12}{'re / glob':>14}")
    for case in HOSTILE:
        length, regex_seconds = time_regex_growth(case, arguments.regex_budget)
        glob_seconds = time_glob(case, length, number, repeat)
        print(
            f"  {case.pattern:<28}{length:>8}{_duration(regex_seconds):>12}"
            f"{_duration(glob_seconds):>12}{regex_seconds / glob_seconds:>13.0f}x"
        )
    print(
        f"  (re is not run at {SUBJECT_LENGTH} characters: its time grows with the subject's "
        "length to the power of the number of `*`)"
    )
    return 0


def time_glob(case: Case, length: int, number: int, repeat: int) -> float:
    """Seconds per match of the compiled pattern on the case's subject: the best repeat."""
    glob = compile_glob(case.pattern)
    subject = case.subject(length)
    if glob.matches(subject):
        raise RuntimeError(f"`{case.pattern}` matches its subject: the benchmark measures nothing")
    timer = timeit.Timer(lambda: glob.matches(subject))
    return min(timer.repeat(repeat=repeat, number=number)) / number


def translate(pattern: str) -> re.Pattern[str]:
    """The regex a naive implementation would build: `*` to `.*`, `?` to `.`, the rest escaped."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


def time_regex_growth(case: Case, budget: float) -> tuple[int, float]:
    """The longest subject `re` was run on, and the seconds its best match took there.

    Before each longer subject, its cost is predicted from the last one (see `_growth`), so no
    run is started that is expected to exceed `budget`; the growth also stops once `re` has
    used ten budgets in all.
    """
    regex = translate(case.pattern)
    glob = compile_glob(case.pattern)
    stars = max(1, case.pattern.count("*"))
    length, seconds, spent = 0, 0.0, 0.0
    upcoming = 8
    while upcoming <= SUBJECT_LENGTH and spent < 10 * budget:
        subject = case.subject(upcoming)
        started = time.perf_counter()
        if (regex.fullmatch(subject) is not None) != glob.matches(subject):
            raise RuntimeError(f"`{case.pattern}`: re and glob disagree on a subject")
        measured = min(_once(partial(regex.fullmatch, subject)) for _ in range(3))
        spent += time.perf_counter() - started
        length, seconds = upcoming, measured
        upcoming = max(upcoming + 1, int(upcoming * 1.25))
        if seconds * _growth(length, upcoming, stars) > budget:
            break
    return length, seconds


def _growth(old: int, new: int, stars: int) -> float:
    """How much longer a backtracking match may take on `new` characters than on `old`.

    A failing match of k stars tries every placement of the pieces between them: about
    C(n, k) of them, so the ratio is C(new, k) / C(old, k) (at least (new / old) ** k).
    """
    ratio = (new / old) ** stars
    if old > stars:
        ratio = max(ratio, math.prod((new - i) / (old - i) for i in range(stars)))
    return ratio


def _once(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _duration(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.2f} us"


if __name__ == "__main__":
    raise SystemExit(main())
