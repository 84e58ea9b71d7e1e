"""``vssid-gateway report``: the figures an operator reconciles against the telcos' bills.

Prints one line per day and per peer, channel and carrier (CSV by default, or JSON) with the
amounts in VND, then the totals; see :mod:`store.reports` for what each figure counts. Days are
Vietnam's (UTC+7) unless ``--utc-offset`` says otherwise.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from datetime import date, timedelta
from typing import Any, TextIO

from gateway.config import Settings
from store.db import create_engine
from store.reports import VIETNAM, Line, Report, billing_report

COLUMNS = ("day", "category", "peer", "channel", "carrier", "measure", "quantity", "amount_vnd")
_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "report",
        parents=parents,
        help="per-day figures and VND amounts to reconcile with the telcos' bills",
        description=(
            "Messages received and replies by peer, resets by channel, carrier and outcome, "
            "calls and billed minutes by carrier; each day of the range, then totals."
        ),
    )
    parser.add_argument("--from", dest="start", required=True, type=_date, metavar="YYYY-MM-DD")
    parser.add_argument("--to", dest="end", required=True, type=_date, metavar="YYYY-MM-DD")
    parser.add_argument("--format", choices=("csv", "json"), default="csv")
    parser.add_argument(
        "--utc-offset",
        type=_offset,
        default=VIETNAM,
        metavar="+HH:MM",
        help="the time zone days are counted in (default +07:00, Vietnam)",
    )
    parser.set_defaults(handler=run)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _offset(text: str) -> timedelta:
    match = _OFFSET.fullmatch(text)
    if not match or int(match[2]) > 14 or int(match[3]) > 59:
        raise argparse.ArgumentTypeError(f"not a UTC offset (+HH:MM): {text!r}")
    sign = -1 if match[1] == "-" else 1
    return sign * timedelta(hours=int(match[2]), minutes=int(match[3]))


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.end < args.start:
        print("vssid-gateway report: --to is before --from", file=sys.stderr)
        return 2
    engine = create_engine(settings.database.url.reveal(), pool_size=1)
    try:
        report = billing_report(engine, args.start, args.end, args.utc_offset)
    finally:
        engine.dispose()
    if args.format == "json":
        write_json(report, sys.stdout)
    else:
        write_csv(report, sys.stdout)
    return 0


def write_csv(report: Report, out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for line in (*report.days, *report.totals):
        writer.writerow(_row(line))


def _row(line: Line) -> list[object]:
    data = line.as_dict()
    return ["" if data[column] is None else data[column] for column in COLUMNS]


def write_json(report: Report, out: TextIO) -> None:
    minutes = int(report.utc_offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    document = {
        "from": report.start.isoformat(),
        "to": report.end.isoformat(),
        "utc_offset": f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}",
        "prices_vnd": {
            "per_message": report.prices.per_message,
            "per_call_minute": report.prices.per_call_minute,
        },
        "amount_vnd": report.amount_vnd,
        "days": [line.as_dict() for line in report.days],
        "totals": [line.as_dict() for line in report.totals],
    }
    json.dump(document, out, ensure_ascii=False, indent=1)
    out.write("\n")
