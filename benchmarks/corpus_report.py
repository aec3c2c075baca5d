"""What validation and vetting made of a catalogue: two Markdown tables for RESULTS.md.

1. Per validation status, its share of the programs validated and its top reasons: the
   driver's first error line (or the worker's kill or crash line), normalised so that one kind
   of failure is one row: Mesa's ``0:12(34):`` location goes, names Mesa quotes (```foo'``) become
   ```…'`` and numbers ``N``. Each reason lists the names it masked most often, which is where
   a missing built-in or dialect gap shows (``texture2D``, ``HW_PERFORMANCE`` …).
2. The share vetted, and of the rejected the share per first reason the stored verdict gives
   (numbers masked: ``frame time at 256x256 N ms > N ms``), among the programs validated (those
   judged "not validated" after a validation stopped part way are counted apart).

Usage: ``python benchmarks/corpus_report.py --db CATALOGUE [--renderer R] [--top 5] [--json]``.
Reads only (a SQLite catalogue is opened read-only).
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
from collections import Counter, defaultdict
from typing import Any

_LOCATION = re.compile(r"^\s*\d+:\d+\(\d+\):\s*")
_QUOTED = re.compile(r"`([^'`]*)'")
_NUMBER = re.compile(r"\b0x[0-9a-fA-F]+\b|(?<![A-Za-z_\d.])\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def first_error_line(log: str | None) -> str:
    """The first line of a driver log that says ``error`` (else its first line)."""
    lines = [line.strip() for line in (log or "").splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower():
            return line
    return lines[0] if lines else "(no log)"


def normalise(line: str) -> tuple[str, list[str]]:
    """(``line`` with its location, quoted names and numbers masked, the names masked)."""
    line = _LOCATION.sub("", line)
    names = _QUOTED.findall(line)
    line = _QUOTED.sub("`…'", line)
    return _NUMBER.sub("N", line)[:140], names


def _connect(db: str) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True)


def _renderer(con: sqlite3.Connection, renderer: str | None) -> str | None:
    if renderer:
        return renderer
    row = con.execute(
        "SELECT renderer, count(*) c FROM validation GROUP BY renderer ORDER BY c DESC"
    ).fetchone()
    return row[0] if row else None


def status_reasons(db: str, renderer: str | None = None, top: int = 5) -> dict[str, Any]:
    """Per status: programs, share, and the ``top`` normalised reasons with counts and names."""
    con = _connect(db)
    renderer = _renderer(con, renderer)
    programs = con.execute("SELECT count(*) FROM program").fetchone()[0]
    rows = con.execute(
        "SELECT v.status, v.log FROM program p JOIN validation v ON v.code_sha256 = p.code_sha256 "
        "AND v.dialect = p.dialect AND v.renderer = ?",
        (renderer,),
    ).fetchall()
    con.close()
    counts: Counter = Counter()
    reasons: dict[str, Counter] = defaultdict(Counter)
    names: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for status, log in rows:
        counts[status] += 1
        if not log:  # ok, and the statuses the pictures decide (nan, blank, constant)
            continue
        reason, masked = normalise(first_error_line(log))
        reasons[status][reason] += 1
        names[(status, reason)].update(masked)
    counts["unvalidated"] = programs - len(rows)
    table = {}
    for status, n in counts.most_common():
        if not n:
            continue
        table[status] = {
            "programs": n,
            # of the programs validated (a validation stopped part way leaves some without one);
            # "unvalidated" is the share of all programs
            "share": n / (programs if status == "unvalidated" else max(1, len(rows))),
            "reasons": [
                {"reason": r, "programs": c, "names": [x for x, _ in names[(status, r)].most_common(3)]}
                for r, c in reasons[status].most_common(top)
            ],
        }
    return {"renderer": renderer, "programs": programs, "statuses": table}


def vetting_reasons(db: str, top: int = 8) -> dict[str, Any]:
    """The share vetted, and the rejected per first stored reason (numbers masked)."""
    con = _connect(db)
    programs = con.execute("SELECT count(*) FROM program").fetchone()[0]
    rows = con.execute("SELECT vetted, reasons, policy_hash FROM vetting").fetchall()
    con.close()
    # a validation stopped part way leaves programs judged "not validated": not the policy's doing
    first = [(v, (json.loads(r) or ["(no reason)"])[0] if r else "(no reason)", p) for v, r, p in rows]
    unvalidated = sum(1 for v, reason, _ in first if not v and reason.startswith("not validated"))
    rows = [(v, reason, p) for v, reason, p in first if v or not reason.startswith("not validated")]
    vetted = sum(1 for v, _, _ in rows if v)
    rejected: Counter = Counter()
    for v, reason, _ in rows:
        if not v:
            rejected[normalise(reason)[0]] += 1
    return {
        "programs": programs,
        "judged": len(rows),
        "not_validated": unvalidated,
        "vetted": vetted,
        "policies": sorted({p for _, _, p in rows}),
        "rejected": [{"reason": r, "programs": n} for r, n in rejected.most_common(top)],
        "rejected_other": sum(rejected.values()) - sum(n for _, n in rejected.most_common(top)),
    }


def markdown(statuses: dict[str, Any], vetting: dict[str, Any]) -> str:
    total = statuses["programs"]
    validated = total - statuses["statuses"].get("unvalidated", {}).get("programs", 0)
    out = [f"Validation of {validated:,} of {total:,} programs on `{statuses['renderer']}`:", ""]
    out += ["| status | programs | share of validated | top reasons (first error line, normalised) |"]
    out += ["| --- | --- | --- | --- |"]
    for status, entry in statuses["statuses"].items():
        reasons = "; ".join(
            f"{r['reason']} ({r['programs']}{': ' + ', '.join(r['names']) if r['names'] else ''})"
            for r in entry["reasons"]
        )
        reasons = reasons.replace("|", "\\|")
        out.append(f"| {status} | {entry['programs']:,} | {entry['share']:.1%} | {reasons} |")
    judged = vetting["judged"]
    left_out = vetting["not_validated"]
    out += [
        "",
        f"Vetting ({', '.join(h[:12] for h in vetting['policies']) or 'no policy'}): "
        f"{vetting['vetted']:,} of {judged:,} judged programs vetted "
        f"({vetting['vetted'] / judged if judged else 0:.1%})"
        + (f"; {left_out:,} not validated yet left out." if left_out else "."),
        "",
    ]
    out += ["| rejected for (first failed check) | programs | share of judged |", "| --- | --- | --- |"]
    for entry in vetting["rejected"]:
        share = entry["programs"] / judged if judged else 0.0
        out.append(f"| {entry['reason']} | {entry['programs']:,} | {share:.1%} |")
    if vetting["rejected_other"]:
        out.append(f"| other | {vetting['rejected_other']:,} | {vetting['rejected_other'] / judged:.1%} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="a SQLite catalogue")
    parser.add_argument("--renderer", help="validations of this renderer (default: the most common)")
    parser.add_argument("--top", type=int, default=5, help="reasons per status")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    statuses = status_reasons(args.db, args.renderer, args.top)
    vetting = vetting_reasons(args.db)
    if args.json:
        print(json.dumps({"statuses": statuses, "vetting": vetting}))
    else:
        print(markdown(statuses, vetting))


if __name__ == "__main__":
    main()
