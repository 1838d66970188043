#!/usr/bin/env python3
"""Whole-process comparison: `pisama detect` (this repository, release build) against the
incumbent Python `pisama analyze` (PyPI `pisama`, see ../shared/design/incumbent.md) on the
same generated traces.

Traces come from ../shared/bench/gen/gen_trace.py (mixed profile, seed 7) and are written once
into .bench-data/ (git-ignored). Each run is a separate process, measured from outside:
wall time, user + system CPU time and peak resident memory of the child (os.wait4), so start-up,
reading, parsing, detection and writing the report all count.

The incumbent is installed with pip into .bench-data/incumbent-venv (never into $HOME; it runs
with HOME pointed at .bench-data/incumbent-home). It is slow on large traces (32 minutes for
1,000 spans in our measurements), so it only runs up to --incumbent-max-spans and under
--incumbent-timeout; a run that hits the limit is reported as "> limit".

Usage (from the repository root, after `cargo build --release`):
  python3 benches/compare.py                     # 100 .. 100,000 spans
  python3 benches/compare.py --million           # also 1,000,000 spans (about 1 GB of JSON)
  python3 benches/compare.py --no-incumbent      # only pisama
  python3 benches/compare.py --incumbent-timeout 600 --incumbent-max-spans 1000
  python3 benches/compare.py --sizes '' --batch 10000   # 10,000 small traces in one JSONL file
  python3 benches/compare.py --sizes '' --stream-gb 1   # a 1 GB JSONL stream: is memory bounded?

Batch and stream files are written by benches/gen_batch.py (the same generator, many traces per
file). The incumbent reads one trace per invocation, so it is not run on them.

Only the Python standard library is used.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT.parent / "shared" / "bench" / "gen" / "gen_trace.py"
BATCH_GENERATOR = ROOT / "benches" / "gen_batch.py"
INCUMBENT_VERSION = "0.7.0"


@dataclass
class Run:
    wall: float
    cpu: float
    peak_mb: float
    exit_code: int | None  # None: killed at the time limit
    timed_out: bool = False


def measure(cmd: list[str], timeout: float | None, env: dict[str, str] | None = None) -> Run:
    """Runs `cmd` with stdout and stderr discarded; returns its wall, CPU and peak memory."""
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    timed_out = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid != 0:
            break
        if timeout is not None and time.monotonic() - start > timeout:
            os.killpg(proc.pid, signal.SIGKILL)
            pid, status, usage = os.wait4(proc.pid, 0)
            timed_out = True
            break
        time.sleep(0.005)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_mb=usage.ru_maxrss / 1024.0,  # Linux reports KiB
        exit_code=None if timed_out else proc.returncode,
        timed_out=timed_out,
    )


def trace_file(data: Path, spans: int, seed: int) -> Path:
    path = data / f"mixed_{spans}.json" if seed == 7 else data / f"mixed_{spans}_s{seed}.json"
    if not path.exists():
        print(f"generating {path.name} ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, str(GENERATOR), "--spans", str(spans), "--seed", str(seed),
             "--out", str(path)],
            check=True,
        )
    return path


def batch_file(data: Path, name: str, gen_args: list[str]) -> Path:
    path = data / name
    if not path.exists():
        print(f"generating {path.name} ...", file=sys.stderr)
        subprocess.run([sys.executable, str(BATCH_GENERATOR), *gen_args, "--out", str(path)],
                       check=True)
    return path


def count_spans(path: Path) -> tuple[int, int]:
    """Traces and spans in a JSONL file of `{"spans": [...]}` lines, without parsing it all."""
    traces = spans = 0
    with path.open("rb") as f:
        for line in f:
            traces += 1
            spans += line.count(b'"span_id"')
    return traces, spans


def prefix_file(source: Path, target: Path, max_bytes: int) -> Path:
    """The whole lines of `source` within its first `max_bytes` bytes (at least one line)."""
    if not target.exists():
        with source.open("rb") as src, target.open("wb") as out:
            written = 0
            for line in src:
                if written and written + len(line) > max_bytes:
                    break
                out.write(line)
                written += len(line)
    return target


def batch_row(pisama: Path, path: Path, runs: int, jobs: int | None) -> Run:
    cmd = [str(pisama), "detect", "--format", "jsonl", "--fail-on", "never", str(path)]
    if jobs:
        cmd[2:2] = ["-j", str(jobs)]
    run = best_of(runs, cmd, None)
    if run.exit_code != 0:
        raise SystemExit(f"error: pisama exited with {run.exit_code} on {path}")
    return run


def run_batch(pisama: Path, data: Path, traces: int, runs: int, jobs: int | None) -> None:
    path = batch_file(data, f"batch_{traces}.jsonl",
                      ["--traces", str(traces), "--min-spans", "5", "--max-spans", "50"])
    n_traces, n_spans = count_spans(path)
    run = batch_row(pisama, path, runs, jobs)
    print(f"batch: {n_traces:,} traces ({n_spans:,} spans, 5–50 each), "
          f"{path.stat().st_size / 1e6:.0f} MB of JSONL, `pisama detect --format jsonl`")
    print()
    print("| traces | spans | wall | CPU | peak | traces/s | µs/span (wall) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {n_traces:,} | {n_spans:,} | {run.wall:.2f} s | {run.cpu:.2f} s "
          f"| {run.peak_mb:.0f} MB | {n_traces / run.wall:,.0f} "
          f"| {run.wall / max(n_spans, 1) * 1e6:.1f} |", flush=True)
    print()


def run_stream(pisama: Path, data: Path, gigabytes: float, jobs: int | None) -> None:
    """Peak memory on a large JSONL stream, on a quarter of it and on its first trace: with
    memory bounded by the largest trace, the first two are about equal."""
    size = int(gigabytes * 1e9)
    tag = f"{gigabytes:g}gb"
    path = batch_file(data, f"stream_{tag}.jsonl",
                      ["--bytes", str(size), "--min-spans", "1000", "--max-spans", "1000",
                       "--distinct", "50"])
    quarter = prefix_file(path, data / f"stream_{tag}_quarter.jsonl", size // 4)
    first = prefix_file(path, data / f"stream_{tag}_first.jsonl", 1)
    print(f"stream: JSONL of 1,000-span traces, `pisama detect --format jsonl`")
    print()
    print("| input | traces | size | wall | CPU | peak | peak / size |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, p in (("first trace", first), ("first quarter", quarter), ("whole stream", path)):
        n_traces, _ = count_spans(p)
        run = batch_row(pisama, p, 1, jobs)
        mb = p.stat().st_size / 1e6
        print(f"| {label} | {n_traces:,} | {mb:,.0f} MB | {run.wall:.2f} s | {run.cpu:.2f} s "
              f"| {run.peak_mb:.0f} MB | {run.peak_mb / mb:.2f}× |", flush=True)
    print()


def incumbent(data: Path) -> Path | None:
    """The incumbent's `pisama` command in a venv under .bench-data, installed on first use."""
    venv = data / "incumbent-venv"
    exe = venv / "bin" / "pisama"
    if exe.exists():
        return exe
    print(f"installing pisama=={INCUMBENT_VERSION} from PyPI into {venv} ...", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        env = dict(os.environ, PIP_CACHE_DIR=str(data / "pip-cache"),
                   HOME=str(data / "incumbent-home"))
        (data / "incumbent-home").mkdir(exist_ok=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", f"pisama=={INCUMBENT_VERSION}"],
            check=True, env=env, timeout=600,
        )
    except (subprocess.SubprocessError, OSError) as e:
        print(f"the incumbent could not be installed ({e}); comparing without it",
              file=sys.stderr)
        shutil.rmtree(venv, ignore_errors=True)
        return None
    return exe if exe.exists() else None


def best_of(runs: int, cmd: list[str], timeout: float | None,
            env: dict[str, str] | None = None) -> Run:
    """Fastest wall time of `runs` runs (stops early at a timeout)."""
    best: Run | None = None
    for _ in range(runs):
        r = measure(cmd, timeout, env)
        if best is None or r.wall < best.wall:
            best = r
        if r.timed_out:
            break
    assert best is not None
    return best


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def fmt_time(r: Run | None, limit: float | None) -> tuple[str, str, str]:
    if r is None:
        return ("–", "–", "–")
    if r.timed_out:
        return (f"> {limit:.0f} s", "–", "–")
    return (f"{r.wall:.2f} s", f"{r.cpu:.2f} s", f"{r.peak_mb:.0f} MB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100,1000,10000,100000",
                    help="comma-separated span counts (default: %(default)s)")
    ap.add_argument("--million", action="store_true", help="also run 1,000,000 spans")
    ap.add_argument("--runs", type=int, default=3,
                    help="runs of pisama per size; the fastest counts (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=7, help="generator seed (default: %(default)s)")
    ap.add_argument("--pisama", default=str(ROOT / "target" / "release" / "pisama"),
                    help="the pisama binary (default: target/release/pisama)")
    ap.add_argument("--jobs", type=int, default=None, help="pass -j N to pisama detect")
    ap.add_argument("--no-incumbent", action="store_true", help="do not run the incumbent")
    ap.add_argument("--incumbent-timeout", type=float, default=120.0,
                    help="seconds before an incumbent run is stopped (default: %(default)s)")
    ap.add_argument("--incumbent-max-spans", type=int, default=1000,
                    help="largest trace given to the incumbent (default: %(default)s)")
    ap.add_argument("--batch", type=int, default=0, metavar="N",
                    help="also time one JSONL file of N small traces (e.g. 10000)")
    ap.add_argument("--stream-gb", type=float, default=0.0, metavar="GB",
                    help="also measure peak memory on a JSONL stream of this many GB (e.g. 1)")
    ap.add_argument("--data-dir", default=str(ROOT / ".bench-data"),
                    help="where traces and the incumbent venv live (default: .bench-data)")
    args = ap.parse_args()

    pisama = Path(args.pisama)
    if not pisama.exists():
        print(f"error: {pisama} not found; run `cargo build --release` first", file=sys.stderr)
        return 2
    if not GENERATOR.exists():
        print(f"error: the generator {GENERATOR} is missing", file=sys.stderr)
        return 2
    data = Path(args.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.million and 1_000_000 not in sizes:
        sizes.append(1_000_000)

    old = None if args.no_incumbent or not sizes else incumbent(data)
    old_env = dict(os.environ, HOME=str(data / "incumbent-home"))
    (data / "incumbent-home").mkdir(exist_ok=True)

    print(f"machine: {os.cpu_count()} CPUs, load average before: {load_average()}")
    print(f"pisama: {pisama} detect --format json (batch and stream: --format jsonl)"
          + (f" -j {args.jobs}" if args.jobs else "")
          + f"; incumbent: pisama {INCUMBENT_VERSION} analyze (text output)"
          + ("" if old else " – not run"))
    print()
    if args.batch:
        run_batch(pisama, data, args.batch, args.runs, args.jobs)
    if args.stream_gb:
        run_stream(pisama, data, args.stream_gb, args.jobs)
    if not sizes:
        print(f"load average after: {load_average()}")
        return 0
    header = ("| spans | input | pisama wall | pisama CPU | pisama peak | µs/span (wall) "
              "| incumbent wall | incumbent CPU | incumbent peak | wall ratio |")
    print(header)
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    per_span: dict[int, float] = {}
    for n in sizes:
        path = trace_file(data, n, args.seed)
        cmd = [str(pisama), "detect", "--format", "json", "--fail-on", "never", str(path)]
        if args.jobs:
            cmd[2:2] = ["-j", str(args.jobs)]
        ours = best_of(args.runs, cmd, None)
        if ours.exit_code != 0:
            print(f"error: pisama exited with {ours.exit_code} on {path}", file=sys.stderr)
            return 1
        per_span[n] = ours.wall / n * 1e6
        theirs = None
        limit = args.incumbent_timeout
        if old and n <= args.incumbent_max_spans:
            theirs = best_of(1, [str(old), "analyze", str(path)], limit, old_env)
        ratio = "–"
        if theirs is not None:
            ratio = (f"> {limit / ours.wall:,.0f}×" if theirs.timed_out
                     else f"{theirs.wall / ours.wall:,.0f}×")
        w, c, m = fmt_time(ours, None)
        tw, tc, tm = fmt_time(theirs, limit)
        size_mb = path.stat().st_size / 1e6
        print(f"| {n:,} | {size_mb:.1f} MB | {w} | {c} | {m} | {per_span[n]:.1f} "
              f"| {tw} | {tc} | {tm} | {ratio} |", flush=True)
    print()
    if 1000 in per_span and 100_000 in per_span:
        print(f"time per span, 100,000 vs 1,000 spans: "
              f"{per_span[100_000] / per_span[1000]:.2f}× (acceptance: within 1.5×)")
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
