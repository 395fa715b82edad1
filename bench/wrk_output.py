"""Read the figures out of ``wrk --latency`` output."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: wrk prints durations with these units (src/units.c).
TO_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}

DURATION = r"([\d.]+)(us|ms|s|m|h)"


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    #: Responses whose status was not 2xx or 3xx, plus socket errors of any kind.
    errors: int
    #: The same, by kind: "non-2xx" (or "HTTP <status>" where the script names them) and
    #: wrk's socket error kinds (connect, read, write, timeout), those that happened only.
    error_kinds: dict[str, int] = field(default_factory=dict)


def _ms(number: str, unit: str) -> float:
    return float(number) * TO_MS[unit]


def parse(text: str) -> WrkResult:
    """Parse the report of one ``wrk --latency`` run; ValueError if it is not one."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    p50 = re.search(rf"^\s+50%\s+{DURATION}", text, re.M)
    p99 = re.search(rf"^\s+99%\s+{DURATION}", text, re.M)
    total = re.search(r"^\s+(\d+) requests in ", text, re.M)
    if not (rps and p50 and p99 and total):
        raise ValueError("not the output of wrk --latency:\n" + text)
    kinds: dict[str, int] = {}
    non_2xx = re.search(r"^\s+Non-2xx or 3xx responses:\s+(\d+)", text, re.M)
    if non_2xx:
        kinds["non-2xx"] = int(non_2xx.group(1))
    sockets = re.search(
        r"^\s+Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text, re.M
    )
    if sockets:
        kinds.update(
            zip(("connect", "read", "write", "timeout"), map(int, sockets.groups()), strict=True)
        )
    errors = sum(kinds.values())
    # Scripts with a response hook anyway (put_if_match.lua) name the statuses themselves.
    statuses = re.search(r"^Statuses: (.*)$", text, re.M)
    if statuses:
        named = {f"HTTP {code}": int(n) for code, n in re.findall(r"(\d+)=(\d+)", statuses[1])}
        if sum(named.values()) == kinds.get("non-2xx"):
            del kinds["non-2xx"]
        kinds.update(named)
    kinds = {kind: n for kind, n in kinds.items() if n}
    return WrkResult(
        requests_per_second=float(rps.group(1)),
        p50_ms=_ms(*p50.groups()),
        p99_ms=_ms(*p99.groups()),
        requests=int(total.group(1)),
        errors=errors,
        error_kinds=kinds,
    )
