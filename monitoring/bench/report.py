"""``bench-report/report.md`` from ``results.json``'s dict: one section per phase measured, the
side-by-side ratios in one table, the charts linked, and what was skipped or failed, and why."""

from __future__ import annotations

from typing import Any

from monitoring.bench.charts import side_by_side

CEILING = "/healthz"
# Every section the report can have, in order (the end-to-end test checks each is written).
SECTIONS = (
    "## Dashboard endpoints in process (full responses)",
    "## A light page: five endpoints at period=24h, in sequence",
    "## Conditional reads (data unchanged)",
    "## Side by side (ratios, same run)",
    "## Indexes present vs dropped",
    "## Eager loading vs a naive lazy serializer (open positions)",
    "## A page vs the whole list (trades)",
    "## Market data and indicators: warm vs cold cache",
    "## Over HTTP",
    "## Dashboard page in Chromium",
    "## Engine",
    "## Scale: trades per user",
    "## Charts",
)


def _ms(row: dict[str, Any], key: str = "p50") -> str:
    value = row.get(key)
    return f"{value:.2f}" if isinstance(value, int | float) else "-"


def _short(url: str) -> str:
    return url.removeprefix("/api/")


def render(r: dict[str, Any]) -> str:
    m, d = r["machine"], r["data"]
    loads = ", ".join(f"{x:.2f}" for x in m["load_average"])
    loads_end = ", ".join(f"{x:.2f}" for x in m.get("load_average_end", ()))
    lines = [
        "# zerobot benchmark report",
        "",
        f"{r['date']}, commit `{r['commit']}`, {m['cpus']} CPUs, load average {loads} at the "
        f"start and {loads_end} at the end, Python {m['python']}, {r.get('seconds', 0):.0f} s "
        "in all.",
        "",
        f"Command: `{r['command']}`. Benchmark database `{d['database']}` (dropped afterwards "
        f"unless `--keep`), profile `{d['profile']}` seeded in {d['seed_seconds']:.0f} s "
        f"({d['all_trades']:,} trades in all). Measured as user `{d['user']}`: {d['bots']} bots, "
        f"{d['trades']:,} trades, {d['open_positions']} open positions. A shared machine is "
        "noisy: compare the ratios measured in this run, not absolute times across runs.",
        "",
    ]
    lines += (
        _endpoints(r) + _light_page(r) + _conditional(r) + _ratios(r) + _indexes(r) + _eager_lazy(r)
    )
    lines += _page_vs_list(r) + _market(r) + _http(r) + _page(r) + _engine(r) + _scale(r)
    if r.get("charts"):
        lines += [SECTIONS[-1], ""] + [f"![{name}]({name})" for name in r["charts"]] + [""]
    for name, why in r["skipped"].items():
        lines.append(f"- {name}: skipped ({why})")
    for name, value in r.items():
        if isinstance(value, dict) and "error" in value:
            lines.append(f"- {name}: not measured ({value['error']})")
    lines.append("")
    return "\n".join(lines)


def _missing(r: dict[str, Any], key: str, title: str) -> list[str] | None:
    value = r.get(key)
    if value is None:
        return [title, "", f"Not measured ({r['skipped'].get(key, 'not run')}).", ""]
    if isinstance(value, dict) and "error" in value:
        return [title, "", f"Not measured ({value['error']}).", ""]
    return None


def _endpoints(r: dict[str, Any]) -> list[str]:
    title = SECTIONS[0]
    if (gone := _missing(r, "endpoints", title)) is not None:
        return gone
    lines = [title, "", "| endpoint | p50 ms | p95 ms | p99 ms | queries | bytes |",
             "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for url, row in r["endpoints"].items():
        lines.append(f"| `{url}` | {_ms(row)} | {_ms(row, 'p95')} | {_ms(row, 'p99')} | "
                     f"{row['queries']} | {row['bytes']:,} |")  # fmt: skip
    return [*lines, ""]


def _light_page(r: dict[str, Any]) -> list[str]:
    title = SECTIONS[1]
    if (gone := _missing(r, "light_page", title)) is not None:
        return gone
    x = r["light_page"]
    low, high = x["inherited_combined_ms"]
    page = x["page"]
    verdict = "faster" if page["p95"] < low else "not faster" if page["p50"] > high else "within"
    lines = [title, "", "| request | p50 ms | p95 ms | p99 ms |", "| --- | --- | --- | --- |"]
    lines += [f"| `{url}` | {_ms(row)} | {_ms(row, 'p95')} | {_ms(row, 'p99')} |"
              for url, row in x["parts"].items()]  # fmt: skip
    lines.append(f"| **the page (sum)** | **{_ms(page)}** | **{_ms(page, 'p95')}** | "
                 f"{_ms(page, 'p99')} |")  # fmt: skip
    lines += ["", f"The inherited system's one combined call: {low}-{high} ms on this machine "
              f"(issue 13, quoted). This page: p50 {_ms(page)} ms, p95 {_ms(page, 'p95')} ms "
              f"({verdict}: faster means p95 below {low} ms).", ""]  # fmt: skip
    return lines


def _conditional(r: dict[str, Any]) -> list[str]:
    title = SECTIONS[2]
    if (gone := _missing(r, "conditional", title)) is not None:
        return gone
    lines = [title, "", "| endpoint | full p50 ms | cached p50 ms | 304 p50 ms | full / cached | "
             "full / 304 |", "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for url, row in r["conditional"].items():
        full = r.get("endpoints", {}).get(url, {}).get("p50")
        c, n = row["cached"]["p50"], row["not_modified"]["p50"]
        if full:
            lines.append(f"| `{url}` | {full:.2f} | {c:.2f} | {n:.2f} | {full / c:.1f}x | "
                         f"{full / n:.1f}x |")  # fmt: skip
        else:
            lines.append(f"| `{url}` | - | {c:.2f} | {n:.2f} | - | - |")
    return [*lines, ""]


def _ratios(r: dict[str, Any]) -> list[str]:
    pairs = side_by_side(r)
    lines = [SECTIONS[3], ""]
    if not pairs:
        return [*lines, "No comparison measured.", ""]
    lines += ["| comparison | ratio |", "| --- | --- |"]
    lines += [f"| {label} | {value:.2f}x |" for label, value in pairs]
    return [*lines, ""]


def _indexes(r: dict[str, Any]) -> list[str]:
    title = SECTIONS[4]
    if (gone := _missing(r, "indexes", title)) is not None:
        return gone
    x = r["indexes"]
    lines = [title, "", f"Dropped (benchmark database only), then `ANALYZE`: "
             f"{', '.join(f'`{n}`' for n in x['dropped'])}; rebuilt in {x['rebuild_seconds']} s "
             "and measured again. p50 / p95 ms:", "",
             "| endpoint | present | dropped | present again | dropped / present p50 | "
             "queries |", "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for url, row in x["rows"].items():
        p, dr, a = row["present"], row["dropped"], row["present_again"]
        lines.append(f"| `{_short(url)}` | {_ms(p)} / {_ms(p, 'p95')} | {_ms(dr)} / "
                     f"{_ms(dr, 'p95')} | {_ms(a)} / {_ms(a, 'p95')} | {row['ratio_p50']:.1f}x | "
                     f"{p['queries']} |")  # fmt: skip
    return [*lines, ""]


def _sides(rows: dict[str, Any], names: list[tuple[str, str]]) -> list[str]:
    lines = ["| variant | path | p50 ms | p95 ms | queries | bytes |",
             "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for key, label in names:
        row = rows[key]
        lines.append(f"| {label} | `{row['url']}` | {_ms(row)} | {_ms(row, 'p95')} | "
                     f"{row['queries']} | {row['bytes']:,} |")  # fmt: skip
    return lines


def _eager_lazy(r: dict[str, Any]) -> list[str]:
    title = SECTIONS[5]
    if (gone := _missing(r, "eager_lazy", title)) is not None:
        return gone
    x = r["eager_lazy"]
    lines = [title, "", *_sides(x, [("product", "product (`.values()`, bot name joined)"),
             ("naive_eager", "ModelSerializer + `select_related`"),
             ("naive_lazy", "ModelSerializer, lazy (N+1)")]), "",
             f"Lazy / eager: **{x['lazy_vs_eager']:.1f}x**; naive eager / product: "
             f"{x['eager_vs_product']:.1f}x (interleaved, same run).", ""]  # fmt: skip
    return lines


def _page_vs_list(r: dict[str, Any]) -> list[str]:
    title = SECTIONS[6]
    if (gone := _missing(r, "page_vs_list", title)) is not None:
        return gone
    x = r["page_vs_list"]
    return [title, "", *_sides(x, [("page", "one page (100)"),
            ("whole_list", "the whole history, same rows")]), "",
            f"Whole list / page: **{x['ratio']:.1f}x**.", ""]  # fmt: skip


def _market(r: dict[str, Any]) -> list[str]:
    title = SECTIONS[7]
    if (gone := _missing(r, "market_cache", title)) is not None:
        return gone
    x = r["market_cache"]
    lines = [title, "", f"{x['candles_stored']:,} candles stored; cold = a new cache epoch before "
             "each request (every value computed again from PostgreSQL and TA-Lib).", "",
             "| read | warm p50 ms | cold p50 ms | cold / warm | queries warm / cold |",
             "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for name in ("ohlcv", "indicators"):
        row = x[name]
        lines.append(f"| `{row['warm']['url']}` | {_ms(row['warm'])} | {_ms(row['cold'])} | "
                     f"{row['ratio']:.1f}x | {row['warm']['queries']} / "
                     f"{row['cold']['queries']} |")  # fmt: skip
    return [*lines, ""]


def _http(r: dict[str, Any]) -> list[str]:
    title = SECTIONS[8]
    if (gone := _missing(r, "http", title)) is not None:
        return gone
    h = r["http"]
    client = f", client {h['client']}" if "client" in h else ""
    lines = [f"{title} ({h['server']}{client}, {h['ceiling']['clients']} clients, "
             f"{h['ceiling']['seconds']:.0f} s each)", "",
             "| load | req/s | p50 ms | p95 ms | p99 ms | errors | statuses | share of ceiling |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for label, key, share in (
        (f"`{CEILING}` (ceiling)", "ceiling", 1.0),
        ("dashboard mix, full responses", "mix_full", h["full_share_of_ceiling"]),
        ("dashboard mix, If-None-Match", "mix_conditional", h["conditional_share_of_ceiling"]),
        ("dashboard mix, full, response cache off", "mix_uncached",
         h.get("uncached_share_of_ceiling")),
        ("dashboard mix, full, response cache off, no pool (a connection per request)",
         "mix_unpooled", h["unpooled_share_of_ceiling"]),
        (f"`{CEILING}` (ceiling), wide", "ceiling_wide", 1.0),
        ("dashboard mix, full responses, wide", "mix_full_wide",
         h.get("full_wide_share_of_ceiling")),
    ):  # fmt: skip
        if key not in h:
            continue
        row = h[key]
        lat = row["latency_ms"]
        if key.endswith("_wide"):
            label = label.replace("wide", f"{row['clients']} clients")
        lines.append(f"| {label} | {row['rps']:.0f} | {lat.get('p50', 0):.1f} | "
                     f"{lat.get('p95', 0):.1f} | {lat.get('p99', 0):.1f} | {row['errors']} | "
                     f"{row['statuses']} | {share:.0%} |")  # fmt: skip
    pool_mix = "full mix, response cache off" if "mix_uncached" in h else "full mix"
    lines += ["", f"Pooled / unpooled ({pool_mix}, req/s): {h['pooled_vs_unpooled']:.2f}x."]
    if "cached_vs_uncached" in h:
        lines.append(f"Response cache on / off (full mix, req/s): {h['cached_vs_uncached']:.2f}x.")
    lines.append("")
    if b := h.get("baseline"):
        lines += [
            f"Against `--baseline {b['checkout']}` (its own gunicorn, same database, slices "
            "interleaved with ours):", "",
            "| load | ours req/s | baseline req/s | ours / baseline |", "| --- | --- | --- | --- |",
            f"| `{CEILING}` | {h['ceiling']['rps']:.0f} | {b['ceiling']['rps']:.0f} | "
            f"{b['ceiling_vs_baseline']:.2f}x |",
            f"| dashboard mix, full | {h['mix_full']['rps']:.0f} | {b['mix_full']['rps']:.0f} | "
            f"{b['mix_full_vs_baseline']:.2f}x (median of slices "
            f"{b['mix_full_vs_baseline_median']:.2f}x) |", "",
            f"Full mix / own ceiling, median of slices: ours {b['share_of_ceiling_median']:.0%}, "
            f"baseline {b['baseline_share_of_ceiling_median']:.0%}.", "",
        ]  # fmt: skip
    return lines


def _page(r: dict[str, Any]) -> list[str]:
    title = SECTIONS[9]
    if (gone := _missing(r, "page", title)) is not None:
        return gone
    p = r["page"]
    lines = [f"{title} (navigation start -> every panel rendered)", "",
             "| load | p50 ms | p95 ms | n |", "| --- | --- | --- | --- |"]  # fmt: skip
    for kind in ("cold", "warm"):
        for name, row in p[kind].items():
            lines.append(f"| {kind}, {name} | {row.get('p50', 0):.1f} | {row.get('p95', 0):.1f} | "
                         f"{row['n']} |")  # fmt: skip
    ev = p["event_latency"]
    return [*lines, "", f"Event latency, commit -> page: p50 {ev.get('p50', 0):.1f} ms, p95 "
            f"{ev.get('p95', 0):.1f} ms (n={ev['n']}).", ""]  # fmt: skip


def _engine(r: dict[str, Any]) -> list[str]:
    title = SECTIONS[10]
    if (gone := _missing(r, "engine", title)) is not None:
        return gone
    e = r["engine"]
    lines = [f"{title} (`bench_engine`'s fleet and rounds: concurrency {e['concurrency']}, pool "
             f"max {e['pool_max']}, {e['symbols']} symbols; one warm-up round filling the market "
             "cache, then the measured round)", "",
             "| bots | cycles/s | p50 ms | p95 ms | errors | pool size | pool errors | peak "
             "server connections | cache hit | warm-up cycles/s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for row in e["fleets"]:
        hit = row.get("cache_hit")
        hit_text = f"{hit:.2%}" if isinstance(hit, int | float) else str(hit)
        lines.append(f"| {row['bots']:,} | {row['cycles_per_s']:.0f} | {row['p50_ms']:.1f} | "
                     f"{row['p95_ms']:.1f} | {row['errors']} | {row['pool_size']} | "
                     f"{row['pool_errors']} | {row['peak_server_connections']} | {hit_text} | "
                     f"{row['warm_up']['cycles_per_s']:.1f} |")  # fmt: skip
    for row in e["fleets"]:
        for phase, part in (("warm-up", row["warm_up"]), ("measured", row)):
            for text in part.get("error_messages", []):
                lines.append(f"\n{row['bots']:,} bots, {phase} round: {text['count']} x "
                             f"`{text['message']}`")  # fmt: skip
    for bots, why in e["skipped"].items():
        lines.append(f"\n{bots} bots: skipped ({why}).")
    return [*lines, ""]


def _scale(r: dict[str, Any]) -> list[str]:
    title = SECTIONS[11]
    if (gone := _missing(r, "scale", title)) is not None:
        return gone
    s = r["scale"]
    shape = s["shape"]
    lines = [title, "", f"The demo user alone, {shape['bots']} bots, {shape['open_positions_per_bot']}"
             f" open positions and {shape['snapshots_per_bot']:,} equity snapshots per bot at "
             "every level; p95 ms per endpoint (default parameters):", ""]  # fmt: skip
    levels = s["levels"]
    if levels:
        urls = list(levels[0]["rows"])
        lines += ["| endpoint | " + " | ".join(f"{lv['trades_per_user']:,}" for lv in levels)
                  + " | last / first |", "| --- |" + " --- |" * (len(levels) + 1)]  # fmt: skip
        for url in urls:
            cells = [levels[i]["rows"][url]["p95"] for i in range(len(levels))]
            lines.append(f"| `{_short(url)}` | " + " | ".join(f"{c:.2f}" for c in cells)
                         + f" | {cells[-1] / cells[0]:.2f}x |")  # fmt: skip
        lines += ["", "Seeding: " + ", ".join(f"{lv['trades_per_user']:,} in "
                  f"{lv['seed_seconds']:.0f} s" for lv in levels) + "."]  # fmt: skip
    for level, why in s["skipped"].items():
        lines.append(f"\n{int(level):,} trades per user: skipped ({why}).")
    return [*lines, ""]
