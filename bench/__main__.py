"""``python -m bench``: run the benchmarks, print a table, write JSON to bench/results/."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench import engine

RESULTS = Path(__file__).parent / "results"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--repeats", type=int, default=5, help="timed batches per case")
    parser.add_argument("--min-time", type=float, default=0.25, help="seconds per batch")
    parser.add_argument("--quick", action="store_true", help="2 short batches: a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON results")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--only", choices=["engine", "csv"], default=None, help="one benchmark")
    args = parser.parse_args(argv)
    if args.only == "csv":  # the CSV import's preview of 5,000 rows (some seconds)
        return _csv(args)
    repeats, min_time = (2, 0.05) if args.quick else (args.repeats, args.min_time)

    report = engine.run(repeats=repeats, min_time=min_time)
    print(engine.table(report))
    if args.no_write:
        return
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = report["measured_at"].replace(":", "").replace("-", "").replace("+0000", "Z")
    path = args.out / f"engine-{stamp}.json"
    text = json.dumps(report, indent=2) + "\n"
    path.write_text(text)
    (args.out / "engine-latest.json").write_text(text)
    print(f"\nwritten: {path}")
    if args.only is None:
        _csv(args)


def _csv(args: argparse.Namespace) -> None:
    from bench import csv_import

    report = csv_import.run(repeats=1 if args.quick else 3)
    print("\n" + csv_import.table(report))
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "csv-import-latest.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
