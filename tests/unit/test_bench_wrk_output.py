"""bench/wrk_output.py: the figures bench/run.py reads out of ``wrk --latency``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location(
    "wrk_output", Path(__file__).resolve().parents[2] / "bench" / "wrk_output.py"
)
wrk_output = importlib.util.module_from_spec(SPEC)
sys.modules.setdefault("wrk_output", wrk_output)  # dataclasses look their module up there
SPEC.loader.exec_module(wrk_output)

REPORT = """\
Running 5s test @ http://127.0.0.1:40123
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    14.18ms   20.01ms   1.31s    93.12%
    Req/Sec   502.31     80.10   640.00     71.00%
  Latency Distribution
     50%  850.00us
     75%   15.02ms
     90%   30.11ms
     99%    1.31s
  2507 requests in 5.00s, 1.32MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:    501.35
Transfer/sec:    270.13KB
"""


def test_parse_reads_throughput_and_percentiles_in_milliseconds():
    result = wrk_output.parse(REPORT)
    assert result.requests_per_second == pytest.approx(501.35)
    assert result.p50_ms == pytest.approx(0.85)
    assert result.p99_ms == pytest.approx(1310.0)
    assert result.requests == 2507


def test_parse_counts_non_2xx_responses_and_socket_errors_as_errors():
    result = wrk_output.parse(REPORT)
    assert result.errors == 7 + 2 + 1
    # By kind, so that a report says what its errors were; kinds that did not happen left out.
    assert result.error_kinds == {"non-2xx": 7, "read": 2, "timeout": 1}


def test_statuses_a_script_names_replace_the_count_of_non_2xx_answers():
    named = wrk_output.parse(REPORT + "Statuses: 412=5 503=2\n")
    assert named.errors == 7 + 2 + 1
    assert named.error_kinds == {"HTTP 412": 5, "HTTP 503": 2, "read": 2, "timeout": 1}
    # Statuses that do not account for every non-2xx answer keep the count beside them.
    partial = wrk_output.parse(REPORT + "Statuses: 412=5\n")
    assert partial.error_kinds == {"non-2xx": 7, "HTTP 412": 5, "read": 2, "timeout": 1}
    assert partial.errors == 7 + 2 + 1


def test_parse_finds_no_errors_when_wrk_reports_none():
    clean = "\n".join(
        line for line in REPORT.splitlines() if "errors" not in line and "Non-2xx" not in line
    )
    assert wrk_output.parse(clean).errors == 0
    assert wrk_output.parse(clean).error_kinds == {}


def test_parse_rejects_output_without_a_latency_distribution():
    with pytest.raises(ValueError, match="wrk --latency"):
        wrk_output.parse(REPORT.replace("99%", "98%"))
