"""``python -m bench``: run the benchmarks, print a table, write JSON to bench/results/."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench import dispatch, engine

RESULTS = Path(__file__).parent / "results"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--repeats", type=int, default=5, help="timed batches per case")
    parser.add_argument("--min-time", type=float, default=0.25, help="seconds per batch")
    parser.add_argument("--quick", action="store_true", help="2 short batches: a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON results")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--only",
        action="append",
        choices=["engine", "dispatch"],
        help="run only this benchmark (repeatable); default: all",
    )
    args = parser.parse_args(argv)
    repeats, min_time = (2, 0.05) if args.quick else (args.repeats, args.min_time)
    only = set(args.only or ["engine", "dispatch"])

    if "engine" in only:
        report = engine.run(repeats=repeats, min_time=min_time)
        print(engine.table(report))
        _write(args, "engine", report)
    if "dispatch" in only:
        report = dispatch.run(quick=args.quick)
        print(dispatch.table(report))
        _write(args, "dispatch", report)


def _write(args: argparse.Namespace, name: str, report: dict) -> None:
    if args.no_write:
        return
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = report["measured_at"].replace(":", "").replace("-", "").replace("+0000", "Z")
    path = args.out / f"{name}-{stamp}.json"
    text = json.dumps(report, indent=2, default=str) + "\n"
    path.write_text(text)
    (args.out / f"{name}-latest.json").write_text(text)
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
