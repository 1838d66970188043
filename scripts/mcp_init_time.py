"""Measures the `initialize` round trip of `pisama mcp` from process start: the time from
spawning the binary to reading its `initialize` response on stdout, over 30 runs (after 3 warm-up
runs, so the binary is in the page cache). Prints min, median, p90 and max in milliseconds.

Usage: python3 mcp_init_time.py PISAMA_BINARY WORKSPACE [RUNS]
Standard library only. A measurement, not a pass/fail test (scripts/mcp-clients.sh prints it).
"""

import json
import statistics
import subprocess
import sys
import time

INIT = json.dumps({
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "init-time", "version": "0"}},
}) + "\n"


def one(binary: str, workspace: str) -> float:
    start = time.perf_counter()
    p = subprocess.Popen([binary, "mcp", "--root", workspace], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    p.stdin.write(INIT.encode())
    p.stdin.flush()
    line = p.stdout.readline()
    elapsed = (time.perf_counter() - start) * 1000.0
    p.stdin.close()
    p.wait(timeout=10)
    reply = json.loads(line)
    if reply.get("result", {}).get("serverInfo", {}).get("name") != "pisama":
        raise SystemExit(f"unexpected reply: {line!r}")
    return elapsed


def main() -> None:
    binary, workspace = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    for _ in range(3):
        one(binary, workspace)
    times = sorted(one(binary, workspace) for _ in range(runs))
    p90 = times[int(0.9 * (len(times) - 1))]
    print(f"initialize round trip from process start ({binary}, {runs} runs): "
          f"min {times[0]:.1f} ms, median {statistics.median(times):.1f} ms, "
          f"p90 {p90:.1f} ms, max {times[-1]:.1f} ms")


if __name__ == "__main__":
    main()
