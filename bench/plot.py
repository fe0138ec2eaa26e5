#!/usr/bin/env python3
"""Plots of a bench run: `plot.py results.json OUT_DIR` writes
- restore_cdf.png: distribution (CDF) of sequential restore → first command, per system;
- frozen_vs_dirty.png: time frozen (and time until durable) against dirty memory, per system;
- concurrent.png: per-clone ready time of the concurrent batches, per system and batch size;
- api_pages.png: list latency per page number (keyset pagination: flat).
Every sample in results.json is drawn; nothing is smoothed."""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

PLAIN = FuncFormatter(lambda v, _: f"{v:g}")


def scale(ax, which, values):
    """Log scale (with plain numbers) when the values span more than 20×, else linear."""
    values = [v for v in values if v > 0]
    if values and max(values) / min(values) > 20:
        getattr(ax, f"set_{which}scale")("log")
        axis = getattr(ax, f"{which}axis")
        axis.set_major_formatter(PLAIN)
        axis.set_minor_formatter(NullFormatter())


def label(s):
    return f"{s['system']} ({s['guest']})" if s.get("guest") else s["system"]


def median(v):
    v = sorted(v)
    return v[(len(v) - 1) // 2] if v else float("nan")


def restore_cdf(r, out):
    fig, ax = plt.subplots(figsize=(7, 4))
    for s in r["restore"]:
        v = sorted(s["ready_ms"])
        if not v:
            continue
        ys = [0.0] + [(i + 1) / len(v) for i in range(len(v))]
        ax.step([v[0]] + v, ys, where="post", label=f"{label(s)}, n={len(v)}")
    scale(ax, "x", [v for s in r["restore"] for v in s["ready_ms"]])
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("restore → first command (ms)")
    ax.set_ylabel("fraction of restores")
    ax.set_title(f"Sequential restores, {r['restore'][0]['dirty_mib']} MiB dirty" if r["restore"] else "")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "restore_cdf.png", dpi=110)
    plt.close(fig)


def frozen_vs_dirty(r, out):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    systems = sorted({s["system"] for s in r["snapshot"]}, key=lambda n: (n != "sandboxd", n))
    for ax, key, title in ((axes[0], "frozen_ms", "time frozen"), (axes[1], "durable_ms", "call → durable / listed")):
        for name in systems:
            rows = sorted((s for s in r["snapshot"] if s["system"] == name and s[key]), key=lambda s: s["dirty_mib"])
            if not rows:
                continue
            xs = [s["dirty_mib"] for s in rows]
            line = ax.plot(xs, [median(s[key]) for s in rows], marker="o", label=label(rows[0]))[0]
            for s in rows:  # every sample, faint
                ax.scatter([s["dirty_mib"]] * len(s[key]), s[key], color=line.get_color(), alpha=0.3, s=10)
        sizes = sorted({s["dirty_mib"] for s in r["snapshot"]})
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(x) for x in sizes])
        ax.xaxis.set_minor_formatter(NullFormatter())
        scale(ax, "y", [v for s in r["snapshot"] for v in s[key]])
        ax.set_xlabel("dirty memory held by the workload (MiB)")
        ax.set_ylabel("ms")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "frozen_vs_dirty.png", dpi=110)
    plt.close(fig)


def concurrent(r, out):
    rows = [s for s in r["concurrent"] if s["ready_ms"]]
    fig, ax = plt.subplots(figsize=(7, 4))
    if rows:
        ax.boxplot([s["ready_ms"] for s in rows], whis=(0, 100))
        ax.set_xticks(range(1, len(rows) + 1), [f"{s['system']}\n{s['clones']} at once" for s in rows], fontsize=8)
    scale(ax, "y", [v for s in rows for v in s["ready_ms"]])
    ax.set_ylabel("each clone: restore → first command (ms)")
    ax.set_title("Concurrent restores from one snapshot")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "concurrent.png", dpi=110)
    plt.close(fig)


def api_pages(r, out):
    a = r.get("api")
    fig, ax = plt.subplots(figsize=(7, 4))
    if a and a["pages"]:
        pages = a["pages"]
        ax.boxplot([p["ms"] for p in pages], whis=(0, 100))
        ax.set_xticks(range(1, len(pages) + 1), [str(p["page"]) for p in pages])
        ax.set_title(f"GET /snapshots?limit={a['limit']} with {a['snapshots']} snapshots stored")
    ax.set_xlabel("page number")
    ax.set_ylabel("latency (ms)")
    ax.set_ylim(bottom=0)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "api_pages.png", dpi=110)
    plt.close(fig)


def main():
    r = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for f in (restore_cdf, frozen_vs_dirty, concurrent, api_pages):
        f(r, out)
    print(f"plots written to {out}")


if __name__ == "__main__":
    main()
