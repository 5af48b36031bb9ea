"""PNG charts of ``manage.py bench``'s results (matplotlib, headless Agg backend). Each function
draws what ``results`` holds for its section and returns the file name, or None when the section
was not measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display, no GUI toolkit

import matplotlib.pyplot as plt


def _short(url: str) -> str:
    return url.removeprefix("/api/").removeprefix("dashboard/")


def _save(fig: Any, out: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def endpoints(results: dict[str, Any], out: Path) -> str | None:
    rows = results.get("endpoints")
    if not rows:
        return None
    names = [_short(u) for u in rows]
    fig, ax = plt.subplots(figsize=(8, 4))
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], [r["p50"] for r in rows.values()], 0.4, label="p50")
    ax.bar([i + 0.2 for i in x], [r["p95"] for r in rows.values()], 0.4, label="p95")
    ax.axhline(10, color="grey", linestyle="--", linewidth=1, label="10 ms target (p95)")
    ax.set_xticks(list(x), names, rotation=20)
    ax.set_ylabel("ms, in process")
    ax.set_title("Dashboard endpoints, full responses")
    ax.legend()
    return _save(fig, out, "endpoints.png")


def scale(results: dict[str, Any], out: Path) -> str | None:
    levels = (results.get("scale") or {}).get("levels") or []
    if not levels:
        return None
    xs = [level["trades_per_user"] for level in levels]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for url in levels[0]["rows"]:
        ax.plot(xs, [level["rows"][url]["p95"] for level in levels], marker="o",
                label=_short(url))  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("trades per user")
    ax.set_ylabel("p95 ms, in process")
    ax.set_ylim(bottom=0)
    ax.set_title("p95 per endpoint as history grows (flat is the goal)")
    ax.legend(fontsize=8, ncol=2)
    return _save(fig, out, "scale.png")


def http(results: dict[str, Any], out: Path) -> str | None:
    h = results.get("http")
    if not h or "ceiling" not in h:
        return None
    kinds = [("ceiling", "/healthz\n(ceiling)"), ("mix_full", "mix, full"),
             ("mix_conditional", "mix,\nIf-None-Match"), ("mix_uncached", "mix, full,\nno cache"),
             ("mix_unpooled", "mix, full, no\ncache, no pool")]  # fmt: skip
    kinds = [(key, label) for key, label in kinds if key in h]
    colours = {"ceiling": "grey", "mix_full": "tab:blue", "mix_conditional": "tab:green",
               "mix_uncached": "tab:orange", "mix_unpooled": "tab:red"}  # fmt: skip
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar([label for _, label in kinds], [h[key]["rps"] for key, _ in kinds],
           color=[colours[key] for key, _ in kinds])  # fmt: skip
    ax.set_ylabel("requests/s")
    ax.set_title(f"Over HTTP: {h['server']}, {h['ceiling']['clients']} clients")
    return _save(fig, out, "http.png")


def ratios(results: dict[str, Any], out: Path) -> str | None:
    pairs = side_by_side(results)
    if not pairs:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(pairs) + 1.2))
    ax.barh([label for label, _ in pairs], [value for _, value in pairs], color="tab:purple")
    ax.axvline(1, color="grey", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("ratio (slower side / faster side), log scale")
    ax.invert_yaxis()
    ax.set_title("Side by side, same run")
    return _save(fig, out, "ratios.png")


def engine(results: dict[str, Any], out: Path) -> str | None:
    fleets = (results.get("engine") or {}).get("fleets") or []
    if not fleets:
        return None
    xs = [row["bots"] for row in fleets]
    fig, left = plt.subplots(figsize=(8, 4))
    left.plot(xs, [row["cycles_per_s"] for row in fleets], marker="o", color="tab:blue")
    left.set_xscale("log")
    left.set_xlabel("bots")
    left.set_ylabel("cycles/s", color="tab:blue")
    right = left.twinx()
    right.plot(xs, [row["p95_ms"] for row in fleets], marker="s", color="tab:orange")
    right.set_ylabel("p95 cycle ms", color="tab:orange")
    left.set_title("Engine: one round per fleet")
    return _save(fig, out, "engine.png")


def side_by_side(r: dict[str, Any]) -> list[tuple[str, float]]:
    """(label, ratio) of every side-by-side comparison measured in ``r``."""
    pairs: list[tuple[str, float]] = []
    h = r.get("http") or {}
    if "pooled_vs_unpooled" in h:
        pairs.append(("pooled / unpooled (HTTP req/s)", h["pooled_vs_unpooled"]))
    for url, row in ((r.get("conditional") or {}) if "error" not in (r.get("conditional") or {})
                     else {}).items():  # fmt: skip
        full = (r.get("endpoints") or {}).get(url, {}).get("p50")
        if full and row["not_modified"].get("p50"):
            pairs.append(
                (f"full / 304: {_short(url)}", round(full / row["not_modified"]["p50"], 2))
            )
    for url, row in ((r.get("indexes") or {}).get("rows") or {}).items():
        pairs.append((f"indexes dropped / present: {_short(url)}", row["ratio_p50"]))
    el = r.get("eager_lazy") or {}
    if "lazy_vs_eager" in el:
        pairs.append(("lazy / eager serializer (positions)", el["lazy_vs_eager"]))
        pairs.append(("naive eager / product (positions)", el["eager_vs_product"]))
    pl = r.get("page_vs_list") or {}
    if "ratio" in pl:
        pairs.append(("whole list / one page (trades)", pl["ratio"]))
    for name in ("ohlcv", "indicators"):
        row = (r.get("market_cache") or {}).get(name)
        if row:
            pairs.append((f"cold / warm cache: {name}", row["ratio"]))
    return pairs


ALL = (endpoints, http, ratios, scale, engine)


def draw(results: dict[str, Any], out: Path) -> list[str]:
    return [name for chart in ALL if (name := chart(results, out))]
