"""``python -m bench``: run the benchmarks, print a table, write JSON to bench/results/."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def _engine(args: argparse.Namespace) -> tuple[dict, str]:
    from bench import engine

    repeats, min_time = (2, 0.05) if args.quick else (args.repeats, args.min_time)
    report = engine.run(repeats=repeats, min_time=min_time)
    return report, engine.table(report)


def _webhook(args: argparse.Namespace) -> tuple[dict, str]:
    from bench import webhook

    duration, warmup, patients = (3.0, 1.0, 100) if args.quick else (10.0, 2.0, 400)
    report = webhook.run(duration=duration, warmup=warmup, workers=args.workers, patients=patients)
    return report, webhook.table(report)


def _report(args: argparse.Namespace) -> tuple[dict, str]:
    from bench import outcome_report

    report = outcome_report.run(repeats=2 if args.quick else 3)
    return report, outcome_report.table(report)


def _csv(args: argparse.Namespace) -> tuple[dict, str]:
    from bench import csv_import

    report = csv_import.run(repeats=1 if args.quick else 3)
    return report, csv_import.table(report)


def _patients(args: argparse.Namespace) -> tuple[dict, str]:
    from bench import patients

    report = patients.run(repeats=2 if args.quick else 5)
    return report, patients.table(report)


def _dispatch(args: argparse.Namespace) -> tuple[dict, str]:
    from bench import dispatch

    sizes = {"one_run": args.one_run} if args.one_run else {}
    report = dispatch.run(quick=args.quick, sizes=sizes)
    return report, dispatch.table(report)


# name -> the benchmark; `python -m bench` runs them all, `--only NAME` one.
BENCHMARKS = {
    "engine": _engine,
    "webhook": _webhook,
    "report": _report,
    "csv": _csv,
    "patients": _patients,
    "dispatch": _dispatch,
}


def write(report: dict, name: str, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stamp = report["measured_at"].replace(":", "").replace("-", "").replace("+0000", "Z")
    path = out / f"{name}-{stamp}.json"
    text = json.dumps(report, indent=2) + "\n"
    path.write_text(text)
    (out / f"{name}-latest.json").write_text(text)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", choices=sorted(BENCHMARKS), help="run this benchmark only")
    parser.add_argument("--repeats", type=int, default=5, help="engine: timed batches per case")
    parser.add_argument("--min-time", type=float, default=0.25, help="engine: seconds per batch")
    parser.add_argument(
        "--workers", type=int, default=None, help="webhook: gunicorn workers (WEB_CONCURRENCY)"
    )
    parser.add_argument(
        "--one-run",
        type=int,
        default=None,
        help="dispatch: due invitations for 'all sent in one scheduler run' (default 2,000;"
        " 10,000 is issue 12's figure, a run of several minutes a database)",
    )
    parser.add_argument("--quick", action="store_true", help="short runs: a smoke test")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON results")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)

    for name, benchmark in BENCHMARKS.items():
        if args.only not in (None, name):
            continue
        report, table = benchmark(args)
        print(table)
        if not args.no_write:
            print(f"\nwritten: {write(report, name, args.out)}")
        print()


if __name__ == "__main__":
    main()
