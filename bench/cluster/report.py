#!/usr/bin/env python3
"""report.py — the figures of bench/cluster/run.sh.

  report.py sample --case C --round R ... LOAD.json...   one sample as a JSON line
  report.py line < sample-line                          that sample on one line
  report.py table --samples FILE --txt OUT --json OUT    medians (min-max) per case

Accepted msg/s is the sum of the clients' 250s over the wall time from the
first client start to the last client finish (measured by run.sh, not by the
clients). For several clients, p50 and p99 are the highest of the clients'
own percentiles: mtaload reports percentiles, not samples, so they cannot be
merged exactly; the highest is an upper bound of the merged one.
"""
import argparse, datetime, json, statistics, sys

CASES = {
    "A": "1 node, local (spool + Maildir)",
    "B": "1 node, jetstream R1, sync_always off",
    "C": "1 node, jetstream R1, sync_always on",
    "D": "3 nodes, jetstream R3, sync_always off",
    "E": "3 nodes, jetstream R3, sync_always on",
}


def step(rep, name):
    for s in rep.get("latency_ms") or []:
        if s["step"] == name:
            return s
    return {"p50": float("nan"), "p99": float("nan")}


def warnings(logs, t0, t2):
    """The warn-or-worse lines of the mtad logs from the client start on
    (not startup's route and election warnings, nor shutdown's), by message."""
    count = {}
    for f in logs:
        with open(f, errors="replace") as fh:
            for l in fh:
                if '"level":"info"' in l or '"level":"debug"' in l:
                    continue
                try:
                    e = json.loads(l)
                except ValueError:
                    continue
                ts = e.get("ts", "")
                try:
                    t = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
                except ValueError:
                    t = t0
                if t0 <= t <= t2:
                    k = f'{e.get("level")}: {e.get("msg")}: {e.get("error", "")}'[:200]
                    count[k] = count.get(k, 0) + 1
    return count


def sample(a):
    warn = warnings(a.log, a.t0, a.t2)
    reps = []
    for f in a.loads:
        with open(f) as fh:
            reps.append(json.load(fh))
    ok = sum(r["ok"] for r in reps)
    failed = sum(r["failed"] for r in reps)
    acc_s, del_s = a.t1 - a.t0, a.t2 - a.t0
    rss = [int(x) for x in a.rss.split()]
    ticks = [int(x) for x in a.cpu_ticks.split()]
    out = {
        "case": a.case, "round": a.round, "n": a.n, "clients": len(reps),
        "sessions": sum(r["concurrency"] for r in reps),
        "ok": ok, "failed": failed,
        "errors": sorted({e if isinstance(e, str) else json.dumps(e) for r in reps for e in (r.get("errors") or [])})[:5],
        "accepted_s": round(acc_s, 3), "accepted_per_s": round(ok / acc_s, 1),
        "p50_ms": max(step(r, "message")["p50"] for r in reps),
        "p99_ms": max(step(r, "message")["p99"] for r in reps),
        "delivered": a.delivered, "delivered_s": round(del_s, 3),
        # delivered msg/s counts only what was accepted: a failed message is
        # never delivered, and the rate would otherwise read too low.
        "delivered_per_s": round(a.delivered / del_s, 1),
        "duplicates_logged": a.dups,
        "cpu_us_per_msg": round(sum(ticks) / a.hz * 1e6 / max(a.delivered, 1)),
        # per node: whether the three share the work (each takes the
        # clients' sessions, and every node applies every replicated write)
        "cpu_us_per_msg_by_node": [round(t / a.hz * 1e6 / max(a.delivered, 1)) for t in ticks],
        "rss_kib": rss, "udp_out": a.udp, "loadavg": a.load,
        "warn_lines": sum(warn.values()),
        "warn_top": sorted(warn.items(), key=lambda kv: -kv[1])[:5], "dir": a.dir,
    }
    print(json.dumps(out))


def line():
    s = json.loads(sys.stdin.readline())
    print(f"  {s['case']} r{s['round']}: accepted {s['ok']}/{s['n']} ({s['failed']} failed) "
          f"{s['accepted_per_s']:.0f}/s p50 {s['p50_ms']:.1f} ms p99 {s['p99_ms']:.1f} ms; "
          f"delivered {s['delivered']} {s['delivered_per_s']:.0f}/s; {s['cpu_us_per_msg']} µs CPU/msg "
          f"{'+'.join(str(x) for x in s['cpu_us_per_msg_by_node'])}; "
          f"RSS {'/'.join(str(k // 1024) for k in s['rss_kib'])} MiB; UDP {s['udp_out']}; "
          f"warn {s['warn_lines']}; load {s['loadavg']}")


def cell(xs, fmt):
    xs = [x for x in xs if x == x]
    if not xs:
        return "n/a"
    m = statistics.median(xs)
    return f"{fmt.format(m)} ({fmt.format(min(xs))}–{fmt.format(max(xs))})" if len(xs) > 1 else fmt.format(m)


def table(a):
    with open(a.samples) as fh:
        samples = [json.loads(l) for l in fh if l.strip()]
    by = {}
    for s in samples:
        by.setdefault(s["case"], []).append(s)
    rounds = sorted({s["round"] for s in samples})
    loads = {r: next(s["loadavg"] for s in samples if s["round"] == r) for r in rounds}
    head = ["case", "accepted msg/s", "p50 ms", "p99 ms", "delivered msg/s", "mtad CPU µs/msg",
            "RSS MiB per node", "UDP", "failed", "warn lines"]
    rows, summary = [], {}
    for c in sorted(by):
        ss = by[c]
        nodes = len(ss[0]["rss_kib"])
        rss = " / ".join(cell([s["rss_kib"][i] / 1024 for s in ss], "{:.0f}") for i in range(nodes))
        row = {
            "accepted_per_s": statistics.median(s["accepted_per_s"] for s in ss),
            "p50_ms": statistics.median(s["p50_ms"] for s in ss),
            "p99_ms": statistics.median(s["p99_ms"] for s in ss),
            "delivered_per_s": statistics.median(s["delivered_per_s"] for s in ss),
            "cpu_us_per_msg": statistics.median(s["cpu_us_per_msg"] for s in ss),
            "rss_mib": [statistics.median(s["rss_kib"][i] / 1024 for s in ss) for i in range(nodes)],
            "udp_out": sum(s["udp_out"] for s in ss),
            "failed": sum(s["failed"] for s in ss),
        }
        summary[c] = {"what": CASES.get(c, c), **row}
        rows.append([f"**{c}** {CASES.get(c, c)}",
                     cell([s["accepted_per_s"] for s in ss], "{:,.0f}"),
                     cell([s["p50_ms"] for s in ss], "{:.1f}"),
                     cell([s["p99_ms"] for s in ss], "{:.0f}"),
                     cell([s["delivered_per_s"] for s in ss], "{:,.0f}"),
                     cell([s["cpu_us_per_msg"] for s in ss], "{:,.0f}"),
                     rss, str(row["udp_out"]), str(row["failed"]),
                     str(sum(s["warn_lines"] for s in ss))])
    n = samples[0]["n"] if samples else 0
    txt = [f"# gomta cluster benchmark (bench/cluster/run.sh): W1-like, 1 KiB, a new connection per message,",
           f"# 20 sessions in all (D, E: 7+7+6, one mtaload per node), N={n} per sample, {len(rounds)} rounds of "
           f"{' '.join(sorted(by))}", f"# gomta {a.rev}, {a.go}, {a.net}; took {a.took} s",
           "# load average (1/5/15 min) at each round's start: " + "; ".join(f"r{r} {loads[r]}" for r in rounds),
           "# medians (min–max); p50/p99: mtaload's MAIL-to-250-after-DATA ('message'), for D/E the highest "
           "of the three clients'", "# warn lines: warn-or-worse lines of the mtad logs from the client start to the last delivery",
           "# delivered: distinct msg_id of 'message delivered' lines in the mtad logs; "
           "CPU: utime+stime of every mtad, first client start to last delivery, per message delivered", "",
           "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    txt += ["| " + " | ".join(r) + " |" for r in rows]
    txt += ["", "samples:"]
    for s in samples:
        txt.append(f"  {s['case']} r{s['round']}: {s['accepted_per_s']:.0f} acc/s, p50 {s['p50_ms']:.1f}, "
                   f"p99 {s['p99_ms']:.1f} ms, {s['delivered']} delivered {s['delivered_per_s']:.0f}/s, "
                   f"{s['cpu_us_per_msg']} µs/msg {s.get('cpu_us_per_msg_by_node', '')}, RSS {s['rss_kib']} KiB, UDP {s['udp_out']}, "
                   f"failed {s['failed']}, dup lines {s['duplicates_logged']}, warn {s['warn_lines']}, load {s['loadavg']}"
                   + (f", errors {s['errors']}" if s['errors'] else "")
                   + (f", warnings {s['warn_top']}" if s['warn_top'] else ""))
    text = "\n".join(txt) + "\n"
    with open(a.txt, "w") as fh:
        fh.write(text)
    with open(a.json, "w") as fh:
        json.dump({"rev": a.rev, "go": a.go, "net": a.net, "took_s": a.took, "n": n,
                   "rounds": len(rounds), "loadavg": loads, "cases": summary, "samples": samples}, fh, indent=1)
    sys.stdout.write(text)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    for k in ("case", "load", "rss", "dir", "cpu-ticks"):
        s.add_argument("--" + k, required=True)
    s.add_argument("--log", action="append", default=[])
    for k in ("round", "n", "hz", "delivered", "udp", "dups"):
        s.add_argument("--" + k, type=int, required=True)
    for k in ("t0", "t1", "t2"):
        s.add_argument("--" + k, type=float, required=True)
    s.add_argument("loads", nargs="+")
    sub.add_parser("line")
    t = sub.add_parser("table")
    for k in ("samples", "txt", "json", "rev", "go", "net"):
        t.add_argument("--" + k, required=True)
    t.add_argument("--took", type=int, required=True)
    a = p.parse_args()
    {"sample": sample, "line": lambda a: line(), "table": table}[a.cmd](a)


if __name__ == "__main__":
    main()
