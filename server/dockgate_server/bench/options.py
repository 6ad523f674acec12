"""The options of `dockgate bench`, each documented for `--help` (no gRPC import here: the CLI
builds its parser on every start)."""

from __future__ import annotations

import argparse

from dockgate_server.channels import add_tls_arguments

__all__ = ["TOKEN_VARIABLE", "add_arguments"]

TOKEN_VARIABLE = "DOCKGATE_ADMIN_TOKEN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `dockgate bench` (each documented in `--help`)."""
    where = parser.add_argument_group("the server")
    target = where.add_mutually_exclusive_group(required=True)
    target.add_argument("--server", metavar="HOST:PORT", help="a running server's decision port")
    target.add_argument(
        "--start",
        action="store_true",
        help="start `dockgate serve` here (127.0.0.1, ephemeral ports, a new store in a "
        "temporary folder) and stop it at the end",
    )
    where.add_argument(
        "--admin",
        metavar="HOST:PORT",
        help="the admin port of --server (default: the same host, port 50052)",
    )
    where.add_argument(
        "--admin-token",
        metavar="TOKEN",
        help=f"the admin API's token (default: ${TOKEN_VARIABLE}); --start makes its own",
    )
    where.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes of the server --start starts, and of the baseline (default: 1)",
    )
    where.add_argument(
        "--cache-size",
        type=int,
        help="the decision cache of the server --start starts; 0 turns it off (default: "
        "serve's own, 100000)",
    )
    add_tls_arguments(parser)  # for --server and --admin
    fleet = parser.add_argument_group("the fleet")
    fleet.add_argument(
        "--existing",
        action="store_true",
        help="use the fleet the server holds as it is (read with ExportBundle) instead of "
        "loading a synthetic one; with --start, the sample fleet",
    )
    fleet.add_argument(
        "--repositories",
        type=int,
        default=1000,
        help="synthetic fleet: repositories, each with tags and a repository policy "
        "(default: %(default)s); loaded with ImportBundle --replace, which replaces the "
        "synthetic accounts (111111111111, 200000000000 and up) on the server",
    )
    fleet.add_argument(
        "--principals",
        type=int,
        default=200,
        help="synthetic fleet: users and roles, each with an inline policy and a managed one "
        "(default: %(default)s)",
    )
    fleet.add_argument(
        "--managed-policies",
        type=int,
        default=40,
        help="synthetic fleet: customer managed policies (default: %(default)s)",
    )
    fleet.add_argument(
        "--groups",
        type=int,
        default=20,
        help="synthetic fleet: groups; each user joins one (default: %(default)s)",
    )
    mix = parser.add_argument_group("the request mix")
    mix.add_argument(
        "--keys",
        type=int,
        default=5000,
        help="distinct requests (principal, action, repository, context) to draw from "
        "(default: %(default)s)",
    )
    mix.add_argument(
        "--zipf",
        type=float,
        default=1.0,
        help="Zipf exponent of how often each key repeats; 0: every key once in turn, no "
        "repeats before the pool is used up (default: %(default)s)",
    )
    mix.add_argument(
        "--push-share",
        type=float,
        default=0.2,
        help="share of push actions; the rest are pull actions (default: %(default)s)",
    )
    mix.add_argument(
        "--cross-account-share",
        type=float,
        default=0.1,
        help="share of requests by a principal of another account (default: %(default)s)",
    )
    mix.add_argument(
        "--denied-share",
        type=float,
        default=0.1,
        help="share of requests the engine denies (default: %(default)s)",
    )
    mix.add_argument("--seed", type=int, default=7, help="of the fleet and mix (default: 7)")
    load = parser.add_argument_group("the load")
    load.add_argument(
        "--mode",
        choices=["unary", "batch"],
        default="unary",
        help="one `Authorize` per call, or one `BatchAuthorize` of --batch-size items "
        "(default: %(default)s)",
    )
    load.add_argument(
        "--batch-size",
        type=int,
        default=100,
        help="items per BatchAuthorize call, at most 1000 (default: %(default)s)",
    )
    load.add_argument(
        "--concurrency",
        type=int,
        default=16,
        help="calls in flight: callers of a closed loop, the cap of an open one (default: "
        "%(default)s)",
    )
    load.add_argument(
        "--connections",
        type=int,
        default=4,
        help="HTTP/2 connections the calls share (default: %(default)s)",
    )
    length = load.add_mutually_exclusive_group()
    length.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="seconds each measured phase lasts (default: %(default)s)",
    )
    length.add_argument("--count", type=int, help="calls each measured phase makes, instead")
    load.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="seconds of load before each measured phase, not counted (default: %(default)s)",
    )
    load.add_argument(
        "--prime",
        action="store_true",
        help="ask every key once (in BatchAuthorize calls) before the warm-up: a decision "
        "cache's steady state for this key pool",
    )
    load.add_argument(
        "--rate",
        type=float,
        help="calls offered a second (an open loop, latency timed from when each call was "
        "due); default: a closed loop, as fast as answers come",
    )
    load.add_argument(
        "--timeout", type=float, default=5.0, help="deadline of each call (default: 5 s)"
    )
    out = parser.add_argument_group("the results")
    out.add_argument(
        "--baseline",
        action="store_true",
        help="also measure, with the same load in this run, a bare grpcio server of the same "
        "contract answering a constant of the same size (same --workers), and print every "
        "figure beside it as a ratio",
    )
    out.add_argument(
        "--check",
        type=int,
        default=200,
        help="calls whose answers are checked against the in-process engine (a uniform sample; "
        "0: none; default: %(default)s)",
    )
    out.add_argument("--report", metavar="PATH", help="write the report here as JSON")
    out.add_argument(
        "--plot",
        metavar="PATH",
        help="draw the latency histogram and the throughput over time here (PNG; needs "
        "matplotlib, the `bench` extra)",
    )
    out.add_argument(
        "--pin",
        action="store_true",
        help="run the load generator on one CPU and the servers this run starts (--start, "
        "--baseline) on the others, so that they do not take turns on a core (Linux, two "
        "CPUs or more)",
    )
    out.add_argument("--quiet", action="store_true", help="no progress bar on standard error")
