"""``courriel serve`` with a relay transport, as a process of its own, for the SIGKILL test.

``python relay_child.py CONFIG HOST PORT``: serves exactly as ``courriel serve`` does
(``courriel.app.serve`` with the configuration file), relaying every domain's mail to the SMTP
server at HOST:PORT through ``courriel.testing.transports.SmtplibTransport``.
"""

from __future__ import annotations

import asyncio
import sys

from courriel import config, logs
from courriel.app import serve
from courriel.testing.transports import SmtplibTransport


def main(argv: list[str]) -> None:
    cfg = config.load(argv[1])
    logs.setup(cfg.log)
    asyncio.run(serve(cfg, transport=SmtplibTransport(argv[2], int(argv[3]))))


if __name__ == "__main__":
    main(sys.argv)
