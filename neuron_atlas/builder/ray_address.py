"""Ray cluster addresses of ``build --ray``: their form checked before anything runs, and a listener looked for
within a connect timeout before Ray is asked to join (``ray.init`` retries an unreachable address for minutes)."""
from __future__ import annotations

import re
import socket

from ..errors import AtlasError, InvalidParameterError

CONNECT_TIMEOUT = 10.0  # seconds to open a TCP connection to the cluster's head
_FORM = re.compile(r"(?P<scheme>ray://)?(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9][A-Za-z0-9.\-_]*):(?P<port>\d{1,5})")
_EXPECTED = "'auto' (this machine's cluster, else a new local one), host:port of a head node (10.0.0.5:6379) or ray://host:port"


def parse(address: str) -> tuple[str, int] | None:
    """(host, port) of ``host:port`` or ``ray://host:port``; None for 'auto'. Anything else is bad input."""
    if address == "auto":
        return None
    match = _FORM.fullmatch(address.strip()) if isinstance(address, str) else None
    if match is None or not 1 <= int(match["port"]) <= 65535:
        raise InvalidParameterError(f"--ray {address!r} is not a Ray address; give {_EXPECTED}")
    return match["host"].strip("[]"), int(match["port"])


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise AtlasError unless something accepts a TCP connection at the address within ``timeout`` seconds."""
    where = parse(address)
    if where is None:
        return
    try:
        socket.create_connection(where, timeout=timeout).close()
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        raise AtlasError(f"cannot connect to the Ray cluster at {address!r} within {timeout:g} s ({reason}); start one "
                         "with `ray start --head`, or pass --ray auto to start a local one") from None
