#!/usr/bin/env python3
"""Turns benches/suite.sh's results.tsv into a Markdown figures section
(printed), and optionally rewrites that section of docs/benchmarks.md
(between the suite markers) and writes an SVG bar plot. std only.

    report.py RESULTS.tsv [--doc docs/benchmarks.md] [--svg docs/benchmarks.svg]
"""
import html
import os
import sys

BEGIN = "<!-- suite:begin: written by benches/suite.sh, edit outside the markers -->"
END = "<!-- suite:end -->"


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def fmt(v, unit):
    if v is None:
        return "—"
    if unit == "req/s":
        return f"{v:,.0f}"
    if unit == "MB/s":
        return f"{v:,.1f}"
    return f"{v:.2f}"


def mib(kb):
    return f"{int(kb) / 1024:.1f}" if kb not in (None, "") else "—"


def load(path):
    out = {"info": {}, "row": [], "vsorigin": [], "rss": {}, "idle": None,
           "outsize": {}, "slow": [], "note": [], "skip": [], "errlog": {}, "errline": []}
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        k = f[0]
        if k == "info":
            out["info"][f[1]] = f[2]
        elif k == "row":
            out["row"].append(dict(w=f[1], what=f[2], unit=f[3], s=num(f[4]), n=num(f[5]),
                                   target=num(f[6]), sruns=f[7], nruns=f[8]))
        elif k == "vsorigin":
            out["vsorigin"].append(dict(w=f[1], what=f[2], unit=f[3], s=num(f[4]), o=num(f[5]),
                                        target=num(f[6]), oruns=f[7]))
        elif k == "rss":
            out["rss"][f[1]] = (f[2], f[3])
        elif k == "idle":
            out["idle"] = (int(f[1]), f[2].split(), f[3].split())
        elif k == "outsize":
            out["outsize"][(f[1], f[2])] = int(f[3])
        elif k == "slow":
            out["slow"].append(dict(server=f[1], what=f[2], before=int(f[3]), peak=int(f[4]),
                                    hwm=int(f[5]), secs=f[6], bytes=f[7], code=f[8],
                                    anon=int(f[10]) - int(f[9]) if len(f) > 10 else None))
        elif k == "note":
            out["note"].append(f[1])
        elif k == "skip":
            out["skip"].append((f[1], f[2]))
        elif k == "errlog":
            out["errlog"][f[1]] = int(f[2])
        elif k == "errline":
            out["errline"].append((f[1], f[2]))
    return out


def size_kib(s):
    """'64k' / '1m' / '4096' -> KiB."""
    s = s.strip().lower()
    mult = {"k": 1, "m": 1024}.get(s[-1:], None)
    return int(s[:-1]) * mult if mult else int(s) / 1024


def ratio(a, b):
    return a / b if a is not None and b else None


def paired_ratios(x):
    """sluice/nginx for each round of a req/s row (round i of each list
    was measured back to back); empty for other units."""
    if x["unit"] != "req/s":
        return []
    s, n = [num(v) for v in x["sruns"].split()], [num(v) for v in x["nruns"].split()]
    return [a / b for a, b in zip(s, n) if a is not None and b]


def markdown(r):
    info, L = r["info"], []
    L.append(f"Run of {info.get('date', '?')}: {info.get('machine', '?')}, at the end "
             f"{info.get('load_end', '?')}; nginx {info.get('nginx', '?')}; sluice at "
             f"{info.get('sluice', '?')}.  ")
    L.append(f"Settings: `{info.get('settings', '')}`.  ")
    L.append(f"Both proxies: `{info.get('proxy', '')}`. Responses to `GET /` "
             f"(head + body, bytes): {info.get('response_size', '?')}.")
    L.append("")
    if r["row"] or r["vsorigin"]:
        L.append("| workload | what | sluice | nginx | sluice/nginx | target | peak RSS MiB, sluice / nginx |")
        L.append("|---|---|---|---|---|---|---|")
        for x in r["row"]:
            q = ratio(x["s"], x["n"])
            paired = paired_ratios(x)
            mean = (f"; mean of the rounds' ratios {sum(paired) / len(paired):.2f}"
                    if len(paired) > 1 else "")
            t = f"≥ {x['target']:g}×" if x["target"] else ""
            ok = "" if not x["target"] or q is None else (" ✓" if q >= x["target"] else " ✗")
            rss = r["rss"].get(x["w"], (None, None))
            L.append(f"| {x['w']} | {x['what']}, {x['unit']} (best of: {x['sruns']} / {x['nruns']}{mean}) | "
                     f"{fmt(x['s'], x['unit'])} | {fmt(x['n'], x['unit'])} | "
                     f"{'—' if q is None else f'{q:.2f}'}{ok} | {t} | {mib(rss[0])} / {mib(rss[1])} |")
        for x in r["vsorigin"]:
            q = ratio(x["s"], x["o"])
            t = f"≥ {x['target']:g}× origin" if x["target"] else ""
            ok = "" if not x["target"] or q is None else (" ✓" if q >= x["target"] else " ✗")
            L.append(f"| {x['w']} | {x['what']} (origin direct, best of: {x['oruns']} GB/s) | "
                     f"{fmt(x['s'], x['unit'])} | origin {fmt(x['o'], x['unit'])} | "
                     f"{'—' if q is None else f'{q:.2f}'}{ok} (of origin) | {t} | |")
        L.append("")
    if r["idle"]:
        n, s, g = r["idle"]
        per = lambda v: (int(v[1]) - int(v[0])) * 1024 / n
        rss = r["rss"].get("idle", (None, None))
        L.append(f"Idle keep-alive connections ({n:,}, one request each): sluice "
                 f"{per(s):.0f} bytes per connection (VmRSS {s[0]} → {s[1]} kB, {s[2]} still open), "
                 f"nginx {per(g):.0f} (VmRSS {g[0]} → {g[1]} kB, {g[2]} still open); "
                 f"sluice/nginx {per(s) / per(g):.2f}. Peak RSS MiB {mib(rss[0])} / {mib(rss[1])}.")
        L.append("")
    if r["outsize"]:
        parts = [f"{w} {name} {b:,}" for (w, name), b in sorted(r["outsize"].items())]
        L.append("Response body bytes out (gzip: compressed size): " + "; ".join(parts) + ".")
        L.append("")
    if r["slow"]:
        proxy = info.get("proxy", "")
        try:
            pb = proxy.split("proxy_buffers ")[1].split(";")[0].split()
            bound_proxy = int(pb[0]) * size_kib(pb[1]) + 1024
        except (IndexError, ValueError):
            bound_proxy = None
        L.append("Slow reader (curl `--limit-rate`, after one small warm-up request to the same "
                 "location; VmRSS and RssAnon sampled every second; VmHWM reset just "
                 "before): growth = max(sampled peak, VmHWM) − VmRSS before; anon growth = "
                 "RssAnon peak − before (heap only, no code or file pages).")
        L.append("")
        L.append("| server | response | seconds | VmRSS before kB | peak sampled kB | VmHWM kB | growth KiB | anon growth KiB | bound KiB |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        names = {"static": "static file (sendfile)", "pb": "proxy, buffering on",
                 "pn": "proxy, buffering off"}
        for x in r["slow"]:
            growth = max(x["peak"], x["hwm"]) - x["before"]
            bound = 1024 if x["what"] == "static" else bound_proxy
            ok = "" if bound is None else (" ✓" if growth < bound else " ✗")
            bad = "" if x["code"] == "200" else f" (status {x['code']}, {x['bytes']} bytes)"
            L.append(f"| {x['server']} | {names.get(x['what'], x['what'])}{bad} | {x['secs']} | "
                     f"{x['before']:,} | {x['peak']:,} | {x['hwm']:,} | {growth:,}{ok} | "
                     f"{'—' if x['anon'] is None else format(x['anon'], ',')} | "
                     f"{'' if bound is None else f'< {bound:,.0f}'} |")
        L.append("")
    errs = r["errlog"]
    if errs:
        L.append("error.log lines at warn or worse: " +
                 ", ".join(f"{k} {v}" for k, v in errs.items()) + ".")
        for name, line in r["errline"]:
            L.append(f"    {name}: {line}")
        L.append("")
    for w, why in r["skip"]:
        L.append(f"Skipped {w}: {why}.")
    for n in r["note"]:
        L.append(f"Note: {n}")
    if r["skip"] or r["note"]:
        L.append("")
    return "\n".join(L)


def svg(r):
    """Two panels: sluice's ratio per row (to nginx, or to the origin), with
    the 1.0 line and the issue's targets; peak RSS per workload."""
    def short(x):
        what = x["what"]
        if x["w"] == "stream" and "origin" in what:
            return what.replace("proxy ", "").replace(" / origin direct", " / origin")
        for key in ("buffering on", "buffering off"):
            if key in what:
                return f"{x['w']} ({key}) / nginx"
        return f"{x['w']} / nginx"
    bars = []
    for x in r["row"]:
        bars.append((short(x), ratio(x["s"], x["n"]), x["target"]))
    for x in r["vsorigin"]:
        bars.append((short(x), ratio(x["s"], x["o"]), x["target"]))
    rss = [(w, int(a) / 1024, int(b) / 1024) for w, (a, b) in r["rss"].items() if a and b]
    W, left, right, bh, gap = 760, 260, 50, 18, 8
    top1 = 50
    h1 = len(bars) * (bh + gap) + 40
    top2 = top1 + h1 + 50
    h2 = len(rss) * (2 * bh + gap) + 40 if rss else 0
    H = top2 + h2 + 20
    maxr = max([2.0] + [b[1] or 0 for b in bars] + [b[2] or 0 for b in bars]) * 1.05
    sx = lambda v: left + (W - left - right) * v / maxr
    e = html.escape
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="10" y="22" font-size="15" font-weight="bold">sluice vs nginx '
         f'({e(r["info"].get("date", ""))}, {e(r["info"].get("machine", "").split(",")[0])})</text>',
         f'<text x="10" y="{top1 - 8}">sluice / nginx (or / origin direct); '
         f'grey line 1.0, red tick: target</text>']
    for i, (label, q, t) in enumerate(bars):
        y = top1 + i * (bh + gap)
        o.append(f'<text x="{left - 6}" y="{y + bh - 5}" text-anchor="end">{e(label[:40])}</text>')
        if q is not None:
            colour = "#69c" if t is None else ("#3a7" if q >= t else "#d84")
            o.append(f'<rect x="{left}" y="{y}" width="{sx(q) - left:.1f}" height="{bh}" fill="{colour}"/>')
            o.append(f'<text x="{sx(q) + 4:.1f}" y="{y + bh - 5}">{q:.2f}</text>')
        if t:
            o.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{y - 2}" y2="{y + bh + 2}" '
                     f'stroke="#c00" stroke-width="3"/>')
    yb = top1 + len(bars) * (bh + gap)
    o.append(f'<line x1="{sx(1):.1f}" x2="{sx(1):.1f}" y1="{top1 - 4}" y2="{yb}" stroke="#888" stroke-dasharray="4 3"/>')
    o.append(f'<line x1="{left}" x2="{left}" y1="{top1 - 4}" y2="{yb}" stroke="black"/>')
    for v in range(0, int(maxr) + 1):
        o.append(f'<text x="{sx(v):.1f}" y="{yb + 14}" text-anchor="middle">{v}×</text>')
    if rss:
        maxm = max(max(a, b) for _, a, b in rss) * 1.1
        sm = lambda v: left + (W - left - right) * v / maxm
        o.append(f'<text x="10" y="{top2 - 8}">peak RSS (VmHWM) per workload, MiB: '
                 f'<tspan fill="#37a">sluice</tspan>, <tspan fill="#aaa">nginx</tspan></text>')
        for i, (w, a, b) in enumerate(rss):
            y = top2 + i * (2 * bh + gap)
            o.append(f'<text x="{left - 6}" y="{y + bh + 4}" text-anchor="end">{e(w)}</text>')
            for j, (v, c) in enumerate(((a, "#37a"), (b, "#aaa"))):
                yy = y + j * bh
                o.append(f'<rect x="{left}" y="{yy}" width="{sm(v) - left:.1f}" height="{bh - 2}" fill="{c}"/>')
                o.append(f'<text x="{sm(v) + 4:.1f}" y="{yy + bh - 6}">{v:.1f}</text>')
        o.append(f'<line x1="{left}" x2="{left}" y1="{top2 - 4}" y2="{top2 + len(rss) * (2 * bh + gap)}" stroke="black"/>')
    o.append("</svg>")
    return "\n".join(o) + "\n"


def main():
    args = sys.argv[1:]
    res = args.pop(0)
    doc = svgpath = None
    while args:
        k = args.pop(0)
        if k == "--doc":
            doc = args.pop(0)
        elif k == "--svg":
            svgpath = args.pop(0)
    r = load(res)
    md = markdown(r)
    print(md)
    if svgpath:
        with open(svgpath, "w") as f:
            f.write(svg(r))
        md += f"\n![sluice/nginx ratios and peak RSS]({os.path.basename(svgpath)})\n"
    if doc:
        text = open(doc).read()
        block = f"{BEGIN}\n\n{md}\n{END}"
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            tail = rest.split(END, 1)[1]
            text = head + block + tail
        else:
            text = text.rstrip("\n") + "\n\n## Figures (benches/suite.sh)\n\n" + block + "\n"
        with open(doc, "w") as f:
            f.write(text)
        print(f"(wrote {doc}{' and ' + svgpath if svgpath else ''})", file=sys.stderr)


if __name__ == "__main__":
    main()
