"""The table of PERFORMANCE.md's "History depth" from ``depth.sh``'s output (stdin): per code,
endpoint and period, the median over the rounds of each database's p50 / p95 and each p95 as a
ratio to x1's.

    tests/performance/depth.sh > depth.txt; python tests/performance/depth_table.py < depth.txt
"""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict


def main() -> None:
    runs: dict[tuple[str, str, str], dict[str, list[tuple[float, float, str, str]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    loads: list[float] = []
    dbs: list[str] = []
    for line in sys.stdin:
        parts = line.split()
        if len(parts) != 11:
            continue
        _round, period, code, db, endpoint, p50, p95, _p99, queries, size, load = parts
        runs[(code, endpoint, period)][db].append((float(p50), float(p95), queries, size))
        loads.append(float(load))
        if db not in dbs:
            dbs.append(db)
    head = " | ".join(f"{db} p50 / p95" for db in dbs)
    ratios = " | ".join(f"{db}/{dbs[0]} p95" for db in dbs[1:])
    print(f"| code | endpoint | period | {head} | {ratios} | queries | bytes {dbs[-1]} |")
    print("| --- " * (5 + len(dbs) + len(dbs) - 1) + "|")
    for (code, endpoint, period), by_db in runs.items():
        p50 = {db: statistics.median(r[0] for r in rows) for db, rows in by_db.items()}
        p95 = {db: statistics.median(r[1] for r in rows) for db, rows in by_db.items()}
        cells = " | ".join(f"{p50[db]:.1f} / {p95[db]:.1f}" if db in p50 else "-" for db in dbs)
        ratio = " | ".join(
            f"**{p95[db] / p95[dbs[0]]:.2f}x**" if db in p95 and dbs[0] in p95 else "-"
            for db in dbs[1:]
        )
        last = by_db.get(dbs[-1]) or next(iter(by_db.values()))
        name = endpoint.removeprefix("/api/dashboard/")
        print(f"| {code} | {name} | {period} | {cells} | {ratio} | {last[0][2]} | {last[0][3]} |")
    if loads:
        print(f"\nload average during the runs: {min(loads):.1f}-{max(loads):.1f}, "
              f"median {statistics.median(loads):.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
