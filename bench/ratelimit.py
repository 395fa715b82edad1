"""What the rate limiter costs per request: limiting off, in memory, and in Redis.

    python bench/ratelimit.py                  # 5 interleaved rounds of 4 s: about 2 minutes
    python bench/ratelimit.py --rounds 3 --duration 2

Starts three hyperapi servers under gunicorn (2 gthread workers, as bench/run.py does, whose
helpers this reuses) on one SQLite file, identical but for the limiter: off
(``hyperapi.ratelimit.enabled = false``), counters in memory, counters in Redis at
127.0.0.1:6379 (database 14, a key prefix of its own). The limit is one no run reaches, so
every request is counted and annotated but none is refused. Each is driven with wrk on the
entry document, anonymously: the cheapest request there is, so the limiter's share of it is
the largest it gets. Rounds interleave the servers (off, memory, redis, then rotated) so
that they share the same moments of a noisy machine; bench/RESULTS-ratelimit.md gets the
medians and the ratios to "off". Only 127.0.0.1 is targeted, and every server is stopped
at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run as harness  # noqa: E402 - bench/ is not a package; bench/run.py's helpers

REDIS_URL = f"redis://{harness.LOCALHOST}:6379/14"
PATH = "/api/v1/"
#: A limit no run reaches: the point is the cost of counting, not of refusing.
UNREACHED = "1000000000/minute"

VARIANTS = {
    "off": {"hyperapi.ratelimit.enabled": "false"},
    "memory": {"hyperapi.ratelimit.storage_url": "memory://"},
    "redis": {
        "hyperapi.ratelimit.storage_url": REDIS_URL,
        "hyperapi.ratelimit.key_prefix": f"bench-{uuid.uuid4().hex[:8]}",
    },
}


def parse_options(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=4, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args(argv)
    # bench/run.py's options, for its server and wrk helpers.
    options = harness.parse_options(
        [
            f"--rounds={args.rounds}",
            f"--duration={args.duration}",
            f"--warmup={args.warmup}",
            f"--connections={args.connections}",
        ]
    )
    return args, options


def redis_answers() -> bool:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def start(variant: str, url: str, workdir: Path, options, procs) -> harness.Server:
    name = f"ratelimit-{variant}"
    base = harness.SERVERS["hyperapi"]
    harness.SERVERS[name] = {
        **base,
        "title": f"hyperapi, limiter {variant}",
        "settings": {
            **base["settings"],
            "hyperapi.ratelimit.default": UNREACHED,
            **VARIANTS[variant],
        },
    }
    return harness.start_server(name, None, url, workdir, options, procs)


def check_annotations(server: harness.Server, variant: str) -> None:
    """The servers differ as they should: no RateLimit field when off, one otherwise."""
    headers, _ = harness.call(server, "GET", PATH, {})
    if (variant == "off") != ("RateLimit" not in headers):
        raise SystemExit(f"{variant}: unexpected RateLimit field: {headers.get('RateLimit')}")


def main(argv=None) -> int:
    args, options = parse_options(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("bench/ratelimit.py needs wrk (Debian/Ubuntu: apt-get install -y wrk)")
    if not redis_answers():
        raise SystemExit(f"bench/ratelimit.py needs Redis at {REDIS_URL}")
    workdir = Path(tempfile.mkdtemp(prefix="hyperapi-bench-ratelimit-"))
    procs = harness.Processes()
    signal.signal(signal.SIGTERM, harness.interrupted)
    facts = harness.machine_facts(options, ["sqlite"])
    scenario = {"name": "entry-anonymous", "script": "request.lua", "args": [f"path={PATH}"]}
    try:
        url = f"sqlite:///{workdir / 'bench.sqlite'}"
        ini = workdir / "init.ini"
        harness.write_ini(ini, harness.SERVERS["hyperapi"], harness.app_settings("hyperapi", url))
        harness.run([harness.bin_path("hyperapi-initializedb"), str(ini)], capture_output=True)
        targets = {}
        for variant in VARIANTS:
            server = start(variant, url, workdir, options, procs)
            check_annotations(server, variant)
            targets[variant] = harness.Target(scenario, server)
        order = list(targets)
        facts["load at start"] = harness.load_average()
        for round_number in range(options.rounds):
            shift = round_number % len(order)
            for variant in order[shift:] + order[:shift]:
                target = targets[variant]
                if options.warmup:
                    warm = harness.wrk_argv(target, {}, options.warmup, options)
                    harness.run_wrk(warm, options.warmup)
                target.argv = harness.wrk_argv(target, {}, options.duration, options)
                result = harness.run_wrk(target.argv, options.duration)
                target.results.append(result)
                print(
                    f"round {round_number + 1}/{options.rounds} {variant:7} "
                    f"{result.requests_per_second:8.0f} req/s p50 {result.p50_ms:6.2f} ms "
                    f"p99 {result.p99_ms:6.2f} ms errors {result.errors}",
                    flush=True,
                )
        facts["load at end"] = harness.load_average()
        report(args, options, targets, facts, argv)
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def report(args, options, targets, facts, argv) -> None:
    off = targets["off"]

    def med(target, attr):
        return statistics.median(getattr(r, attr) for r in target.results)

    rows = []
    for variant, target in targets.items():
        rps, p50, p99 = (med(target, a) for a in ("requests_per_second", "p50_ms", "p99_ms"))
        ratio = rps / med(off, "requests_per_second")
        # At saturation on this machine's cores, the extra CPU time each request costs.
        extra_us = (1 / rps - 1 / med(off, "requests_per_second")) * 1e6 * (os.cpu_count() or 1)
        rows.append(
            f"| {variant} | {rps:,.0f} | {ratio:.2f}x | {p50:.2f} | {p99:.2f} | "
            f"{(p50 - med(off, 'p50_ms')) * 1000:+.0f} | "
            f"{'' if variant == 'off' else f'{extra_us:+.0f}'} | "
            f"{sum(r.errors for r in target.results)} |"
        )
    rounds = [
        f"| {variant} | "
        + " | ".join(f"{r.requests_per_second:,.0f}" for r in target.results)
        + " |"
        for variant, target in targets.items()
    ]
    command = shlex.join(["python", "bench/ratelimit.py", *(argv or sys.argv[1:])])
    wrk = harness.shown_command(off.argv, {"token": "\0", "basic": "\0"})  # no secrets here
    lines = [
        "# Rate limiter cost per request",
        "",
        f"Produced by `{command}` (see its docstring). The same hyperapi server three times,",
        "differing only in the limiter: off, counters in memory, counters in Redis. Anonymous",
        f"`GET {PATH}` (no database work), so the limiter's share is as large as it gets; a limit",
        "that no run reaches, so every request is counted and annotated and none refused.",
        f"{options.rounds} rounds, interleaved (off, memory, redis, rotated each round), of",
        f"{options.duration} s after {options.warmup} s of warm-up; medians over the rounds.",
        "",
        "| limiter | req/s | vs off | p50 ms | p99 ms | p50 vs off (µs) "
        "| CPU per request vs off (µs) | errors |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        '"CPU per request" is (1/rps - 1/rps_off) x the machine\'s cores: what each request',
        "costs in addition when the server is saturated (wrk shares those cores).",
        "",
        "Requests per second, round by round:",
        "",
        "| limiter | " + " | ".join(f"round {n + 1}" for n in range(options.rounds)) + " |",
        "|---|" + "---|" * options.rounds,
        *rounds,
        "",
        f"wrk: `{wrk}`",
        "",
        "## Machine",
        "",
        *[f"- {name}: {value}" for name, value in facts.items()],
        "",
    ]
    (BENCH / "RESULTS-ratelimit.md").write_text("\n".join(lines))
    print(f"wrote {BENCH / 'RESULTS-ratelimit.md'}")


if __name__ == "__main__":
    raise SystemExit(main())
