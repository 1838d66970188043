#!/usr/bin/env python3
"""Writes a JSONL stream of many traces for the batch and streaming benchmarks.

Each line is one trace in the incumbent's `{"trace_id": ..., "spans": [...]}` shape, built with
`make_spans` from ../shared/bench/gen/gen_trace.py (mixed profile), so the content is the same
kind the single-trace benchmarks use.

  python3 benches/gen_batch.py --traces 10000 --min-spans 5 --max-spans 50 --out batch.jsonl
  python3 benches/gen_batch.py --bytes 1e9 --min-spans 1000 --max-spans 1000 --out stream.jsonl

With --bytes, traces are written until the file reaches that size (--traces is then a cap).
Span counts are drawn uniformly from [min, max] with a fixed seed, so a file is reproducible.
At most --distinct different traces are generated; later lines repeat them under a new
trace id (generating a gigabyte of fresh spans takes minutes and measures nothing extra).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sys
from pathlib import Path

GENERATOR = Path(__file__).resolve().parent.parent.parent / "shared" / "bench" / "gen" / "gen_trace.py"


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_trace", GENERATOR)
    if spec is None or spec.loader is None or not GENERATOR.exists():
        sys.exit(f"error: the generator {GENERATOR} is missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--traces", type=int, default=None,
                    help="number of traces (default 10,000; with --bytes, a cap)")
    ap.add_argument("--bytes", type=float, default=None, help="stop once the file has this many bytes")
    ap.add_argument("--min-spans", type=int, default=5)
    ap.add_argument("--max-spans", type=int, default=50)
    ap.add_argument("--distinct", type=int, default=2000,
                    help="different traces generated before lines repeat (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.min_spans < 1 or args.max_spans < args.min_spans:
        sys.exit("error: need 1 <= --min-spans <= --max-spans")

    gen = load_generator()
    rng = random.Random(args.seed)
    cache: list[list[dict]] = []
    out = Path(args.out)
    tmp = out.with_suffix(out.suffix + ".tmp")
    written = 0
    cap = args.traces if args.traces is not None else (None if args.bytes else 10_000)
    with tmp.open("w", encoding="utf-8") as f:
        i = 0
        while True:
            if (cap is not None and i >= cap) or (args.bytes is not None and written >= args.bytes):
                break
            if len(cache) < args.distinct:
                spans = gen.make_spans(rng.randint(args.min_spans, args.max_spans), seed=args.seed * 100_000 + i)
                cache.append(spans)
            else:
                spans = cache[i % args.distinct]
            line = json.dumps({"trace_id": f"batch-{i:07d}", "spans": spans}) + "\n"
            f.write(line)
            written += len(line.encode("utf-8"))
            i += 1
    tmp.replace(out)
    print(f"wrote {i:,} traces, {written / 1e6:.1f} MB to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
