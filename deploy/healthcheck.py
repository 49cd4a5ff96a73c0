"""Container health check: exit 0 when the service answers, 1 when it does not.

Used by the image's HEALTHCHECK, the compose file and the Kubernetes exec probes; the
standard library only, so each probe starts fast.

    healthcheck.py http URL    an HTTP answer below 500 (the API's probe asks
                               /health/ready, which answers 503 when not ready)
    healthcheck.py tcp PORT    a connection to 127.0.0.1:PORT is accepted
"""

from __future__ import annotations

import socket
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 4.0


def http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as answer:
            return int(answer.status) < 500
    except urllib.error.HTTPError as refused:
        return refused.code < 500
    except OSError:
        return False


def tcp_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S):
            return True
    except OSError:
        return False


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "http":
        return 0 if http_answers(argv[1]) else 1
    if len(argv) == 2 and argv[0] == "tcp" and argv[1].isdigit():
        return 0 if tcp_accepts(int(argv[1])) else 1
    print("usage: healthcheck.py http URL | tcp PORT", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
