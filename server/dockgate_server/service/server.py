"""`dockgate serve`: the store seeded, every address checked, then the doors run (`frontends.app`).

The doors (the decision and admin ports, metrics, Envoy's ext_authz, nginx's auth_request) and
how they run in one process or several workers are in `dockgate_server.frontends`; this is where
`dockgate serve` puts them together with the store.
"""

from __future__ import annotations

import importlib.resources
import logging
import sys

from dockgate_server.frontends.config import ServeConfig
from dockgate_server.frontends.door import StartupError
from dockgate_server.policy.parse import load_json
from dockgate_server.service.logs import configure_logging
from dockgate_server.service.processes import end_with_parent
from dockgate_server.store.bundle import bundle_to_fleet
from dockgate_server.store.port import open_store

__all__ = ["ServeConfig", "StartupError", "end_with_parent", "serve"]

log = logging.getLogger("dockgate.server")


def serve(config: ServeConfig) -> int:
    """Serve until SIGTERM or SIGINT; 0 then, 2 (with one line on stderr) when it cannot start."""
    # the doors import the service layer, which imports this module: only once it serves
    from dockgate_server.frontends.app import check_addresses, run  # noqa: PLC0415

    configure_logging(config.log_level)
    try:
        check_addresses(config)
        _seed(config)
        return run(config)
    except StartupError as problem:
        print(f"dockgate: {problem}", file=sys.stderr)
        return 2


def _seed(config: ServeConfig) -> None:
    """A new store gets the sample fleet, so the first `Authorize` shows real decisions."""
    with open_store(config.store) as store:
        if store.revision == 0 and config.seed_sample:
            text = (
                importlib.resources.files("dockgate_server.data")
                .joinpath("sample-bundle.json")
                .read_text()
            )
            change = store.import_fleet(bundle_to_fleet(load_json(text)))
            log.info("seeded the sample fleet", extra={"fields": {"revision": change.revision}})
