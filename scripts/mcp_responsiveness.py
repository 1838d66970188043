"""Measures whether `pisama mcp` keeps answering while a large detection runs: it writes a
generated trace of N spans into the workspace, starts `pisama_detect` on it, and while that
runs sends `brain_search` requests and times each answer. Prints the detection time and the
search latencies, and exits 1 if a search was not answered before the detection finished.

Usage: python3 mcp_responsiveness.py PISAMA_BINARY WORKSPACE [SPANS]
Standard library only. A measurement printed by scripts/mcp-clients.sh.
"""

import json
import os
import subprocess
import sys
import threading
import time


def write_trace(path: str, spans: int) -> None:
    with open(path, "w") as f:
        f.write('{"trace_id": "large", "spans": [')
        for i in range(spans):
            if i:
                f.write(",")
            f.write(json.dumps({
                "span_id": f"s{i}", "parent_id": None, "kind": "tool",
                "start_time": f"2026-01-01T00:{(i // 60) % 60:02d}:{i % 60:02d}+00:00",
                "status": "ok", "name": f"tool_{i % 13}",
                "input_data": {"query": f"question {i % 97}"},
                "output_data": {"result": f"answer number {i} about topic {i % 31}"},
            }))
        f.write("]}")


def main() -> None:
    binary, workspace = sys.argv[1], sys.argv[2]
    spans = int(sys.argv[3]) if len(sys.argv) > 3 else 50_000
    trace = os.path.join(workspace, "large-trace.json")
    write_trace(trace, spans)
    p = subprocess.Popen([binary, "mcp", "--root", workspace], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
    replies: dict[int, tuple[float, dict]] = {}
    done = threading.Event()

    def reader() -> None:
        for line in p.stdout:
            msg = json.loads(line)
            if "id" in msg:
                replies[msg["id"]] = (time.perf_counter(), msg)
        done.set()

    threading.Thread(target=reader, daemon=True).start()

    def send(msg: dict) -> float:
        p.stdin.write(json.dumps(msg) + "\n")
        p.stdin.flush()
        return time.perf_counter()

    def wait(i: int, timeout: float = 600.0) -> tuple[float, dict]:
        end = time.time() + timeout
        while i not in replies:
            if time.time() > end:
                raise SystemExit(f"no reply to request {i}")
            time.sleep(0.001)
        return replies[i]

    send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "resp", "version": "0"}}})
    wait(1)
    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    started = send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "pisama_detect", "arguments": {"path": "large-trace.json"}}})
    time.sleep(0.2)
    latencies = []
    answered_during = 0
    for i in range(5):
        sent = send({"jsonrpc": "2.0", "id": 10 + i, "method": "tools/call", "params": {
            "name": "brain_search", "arguments": {"query": "anything"}}})
        at, reply = wait(10 + i)
        latencies.append((at - sent) * 1000.0)
        if 2 not in replies:
            answered_during += 1
        if reply.get("result", {}).get("isError"):
            raise SystemExit(f"brain_search failed: {reply}")
        time.sleep(0.1)
    finished, detect = wait(2)
    p.stdin.close()
    p.wait(timeout=30)
    os.remove(trace)
    if detect.get("result", {}).get("isError"):
        raise SystemExit(f"pisama_detect failed: {detect['result']['content'][0]['text']}")
    latencies.sort()
    print(f"responsiveness ({binary}, {spans:,} spans): pisama_detect took {(finished - started):.2f} s; "
          f"{answered_during} of 5 brain_search calls answered while it ran, "
          f"latency median {latencies[2]:.1f} ms, max {latencies[-1]:.1f} ms")
    if answered_during == 0:
        raise SystemExit("no brain_search was answered while the detection ran")


if __name__ == "__main__":
    main()
