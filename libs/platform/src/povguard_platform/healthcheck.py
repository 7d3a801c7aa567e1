"""`povguard-healthcheck`: exit 0 when the service in this container answers /healthz on 127.0.0.1:$PORT (without
PORT: on any installed service's default port, as one service runs in a container). The standard library only, so
that it answers within a container healthcheck's timeout on a busy machine."""

from __future__ import annotations

import os
import sys
import urllib.request


def main() -> None:
    if os.environ.get("PORT"):
        ports = [int(os.environ["PORT"])]
    else:
        from povguard_platform.serve import service_definitions

        ports = [d.default_port for d in service_definitions().values()]
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as response:
                if response.status == 200:
                    return
        except OSError:
            continue
    sys.exit(f"no healthy service on port(s) {', '.join(map(str, ports))}")


if __name__ == "__main__":
    main()
