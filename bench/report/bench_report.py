#!/usr/bin/env python3
"""Turn benchlib JSON documents into a Markdown summary and gnuplot PNGs.

    bench_report.py [--floor OP=RAW1+RAW2 ...] DIR

Reads every DIR/*.json written by a libdsm benchmark (bench_verbs,
bench_uffd, ...: {"tool": ..., "benchmarks": [...]}), and writes
DIR/summary.md (perftest's statistics and the counters of every benchmark,
and for each operation with a known floor its ratio to that floor) and
DIR/latency.png (median latency of each operation beside its floor).

A floor is the sum of the medians of the raw operations an operation cannot
avoid, measured in the same run (FLOORS below; --floor adds or replaces
one).  An operation whose floor parts are missing from DIR is listed
without a ratio.

FLOORS names the raw verbs operations (bench_verbs, scripts/bench).  A run
that has none of them but bench_ofi's (scripts/bench --native: libfabric,
no RDMA) takes each verbs part's libfabric counterpart instead (OFI_PARTS);
summary.md ends with the floor set used.
"""
import glob
import json
import os
import shutil
import subprocess
import sys

# operation -> the raw benchmarks whose medians add up to its floor
FLOORS = {
    # libdsm's transport against raw verbs
    "xport_send_64": ["verbs_send_64"],
    "xport_send_64_poll": ["verbs_send_64"],
    "xport_read_4k": ["verbs_read_4k"],
    "xport_read_4k_poll": ["verbs_read_4k"],
    # libdsm's shared memory (bench_dsm).  A miss: the page crosses once
    # (an RDMA READ of 4 KiB is the floor of that) and one local fault
    # maps it; a remote master adds one small message round trip (two
    # one-way 64 B SENDs).  An upgrade: the write-protect fault and two
    # round trips (to the master; invalidations out and acks back, in
    # parallel).  "NAME*K" counts a part K times.
    "dsm_read_miss_local_master": ["verbs_read_4k", "uffd_minor"],
    "dsm_read_miss_remote_master": ["verbs_read_4k", "uffd_minor",
                                    "verbs_send_64*2"],
    "dsm_write_miss": ["verbs_read_4k", "uffd_minor", "verbs_send_64*2"],
    "dsm_upgrade_1": ["uffd_wp", "verbs_send_64*4"],
    "dsm_upgrade_2": ["uffd_wp", "verbs_send_64*4"],
    "dsm_upgrade_4": ["uffd_wp", "verbs_send_64*4"],
    "dsm_upgrade_7": ["uffd_wp", "verbs_send_64*4"],
    "dsm_pingpong_rtt": ["verbs_read_4k*2", "uffd_minor*2"],
    "dsm_minor_fault": ["uffd_minor"],
    "dsm_barrier": ["verbs_send_64*2"],
    "dsm_scan_64": ["verbs_read_4k*64", "uffd_minor*64"],
    # A lock and an unlock with a remote master: two message round trips
    # (request and grant, release and its answer).  With a local master
    # nothing crosses the network: no floor is measured for it.
    "lock_ex_remote_master": ["verbs_send_64*4"],
}

# The libfabric floor parts (bench_ofi) that stand for the verbs ones in a
# run without RDMA.
OFI_PARTS = {
    "verbs_send_64": "ofi_send_64",
    "verbs_read_4k": "ofi_read_4k",
}

# Application-shaped benchmarks: their samples are whole iterations of a
# workload (seconds), listed in the table but kept out of the latency plot.
APP_TOOLS = {"bench_partition", "app_jacobi"}

STATS = ("min_us", "median_us", "avg_us", "p99_us", "p999_us")
NOT_COUNTERS = set(STATS) | {"name", "note", "bytes", "iterations", "warmup",
                             "trimmed", "max_us", "stdev_us", "fabric"}


def load(outdir):
    results = {}
    for path in sorted(glob.glob(os.path.join(outdir, "*.json"))):
        try:
            with open(path) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            sys.exit(f"bench_report: {path}: {e}")
        if not isinstance(doc, dict) or "benchmarks" not in doc:
            continue
        for b in doc["benchmarks"]:
            b["tool"] = doc.get("tool", os.path.basename(path))
            if "fabric" in doc:
                b["fabric"] = doc["fabric"]
            results[b["name"]] = b
    return results


def split_part(part):
    name, _, times = part.partition("*")
    return name, int(times) if times else 1


def floor_set(results):
    """The raw set this run measured: its name and tool for the summary,
    and FLOORS with its parts renamed to that set's."""
    ofi = [results[p] for p in OFI_PARTS.values() if p in results]
    if any(p in results for p in OFI_PARTS) or not ofi:
        return "verbs", "bench_verbs", FLOORS

    def rename(part):
        name, k = split_part(part)
        name = OFI_PARTS.get(name, name)
        return f"{name}*{k}" if "*" in part else name

    fabric = ofi[0].get("fabric", "libfabric")
    return fabric, ofi[0]["tool"], {op: [rename(p) for p in parts]
                                    for op, parts in FLOORS.items()}


def floor_of(name, results, floors):
    parts = floors.get(name)
    if not parts or any(split_part(p)[0] not in results for p in parts):
        return None, parts
    return sum(results[n]["median_us"] * k
               for n, k in map(split_part, parts)), parts


def markdown(results, floors, set_name, set_tool):
    out = ["| benchmark | tool | iterations | min | median | avg | p99 | "
           "p99.9 | counters per op | floor (median) | ratio |",
           "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for name, b in results.items():
        counters = ", ".join(f"{k}={v:g}" for k, v in b.items()
                             if k not in NOT_COUNTERS and k != "tool"
                             and isinstance(v, (int, float)))
        if b.get("tool") == "bench_dsm" and b.get("bytes", 0) > 4096:
            # A scan: its rate from the median (bytes per microsecond is
            # MB/s).
            mbs = b["bytes"] / b["median_us"]
            counters += f", MB_s={mbs:.3g}, pages_s={mbs * 1e6 / 4096:.4g}"
        floor, parts = floor_of(name, results, floors)
        fl = f"{floor:.2f} ({' + '.join(parts)})" if floor else "-"
        ratio = f"{b['median_us'] / floor:.2f}" if floor else "-"
        stats = " | ".join(f"{b[s]:.2f}" for s in STATS)
        out.append(f"| {name} | {b['tool']} | {b['iterations']} | {stats} "
                   f"| {counters or '-'} | {fl} | {ratio} |")
    out.append("")
    out.append("Times in microseconds; warm-up and trimmed samples as each "
               "tool states. Ratios compare medians of the same run.")
    out.append("")
    out.append(f"Floor set: {set_name} ({set_tool}).")
    return "\n".join(out) + "\n"


def plot(results, outdir, floors, set_name):
    if not shutil.which("gnuplot"):
        print("bench_report: gnuplot not found; no plot (run scripts/setup)",
              file=sys.stderr)
        return False
    # Whole iterations of an application benchmark are not operations:
    # they stay in the table only.
    ops = {n: b for n, b in results.items() if b.get("tool") not in APP_TOOLS}
    if not ops:
        print("bench_report: no per-operation results; no plot",
              file=sys.stderr)
        return False
    data = os.path.join(outdir, "latency.dat")
    with open(data, "w") as f:
        f.write("# name median floor\n")
        for name, b in ops.items():
            floor, _ = floor_of(name, results, floors)
            fl = f"{floor:.3f}" if floor else "?"
            f.write(f'"{name}" {b["median_us"]:.3f} {fl}\n')
    script = f"""
set terminal pngcairo size 1000,500 noenhanced
set output '{os.path.join(outdir, "latency.png")}'
set title 'Median latency by operation, against its floor ({set_name}, same run)'
set ylabel 'microseconds (log scale)'
set logscale y
set datafile missing '?'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set xtics rotate by -30
set grid ytics
set offsets 0, 0, graph 0.08, 0
plot '{data}' using 2:xtic(1) title 'median', '' using 3 title 'floor'
"""
    gnuplot(script)
    return True


def gnuplot(script):
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def plot_series(outdir, png, title, xlabel, ylabel, points, with_floor):
    """A line plot of (x, median[, floor]) points; False if none."""
    if not points or not shutil.which("gnuplot"):
        return False
    data = os.path.join(outdir, png.replace(".png", ".dat"))
    with open(data, "w") as f:
        f.write(f"# {xlabel} median floor\n")
        for x, med, fl in sorted(points):
            f.write(f"{x} {med:.3f} {fl or 0:.3f}\n")
    floor_line = f", '{data}' using 1:3 with linespoints title 'floor'" \
        if with_floor else ""
    gnuplot(f"""
set terminal pngcairo size 800,450 noenhanced
set output '{os.path.join(outdir, png)}'
set title '{title}'
set xlabel '{xlabel}'
set ylabel '{ylabel}'
set grid
set yrange [0:*]
plot '{data}' using 1:2 with linespoints title 'median'{floor_line}
""")
    return True


def plot_upgrades(results, outdir, floors):
    pts = []
    for name, b in results.items():
        if name.startswith("dsm_upgrade_"):
            fl, _ = floor_of(name, results, floors)
            pts.append((int(name.rsplit("_", 1)[1]), b["median_us"], fl))
    return plot_series(outdir, "upgrade.png",
                       "Upgrade latency against the number of other sharers",
                       "other sharers", "microseconds", pts, True)


def plot_app(results, outdir):
    pts = [(int(b.get("nodes", 0)), b["median_us"] / 1e6, None)
           for b in results.values() if b.get("tool") == "app_jacobi"]
    return plot_series(outdir, "app.png",
                       "The Jacobi example: time of the sweeps by node count",
                       "nodes", "seconds", pts, False)


def parse_args(argv):
    args = list(argv)
    while len(args) > 1 and args[0] == "--floor":
        op, _, parts = args[1].partition("=")
        if not op or not parts:
            sys.exit(f"bench_report: bad --floor '{args[1]}' (want OP=RAW1+RAW2)")
        FLOORS[op] = parts.split("+")
        args = args[2:]
    if len(args) != 1:
        sys.exit(__doc__)
    return args[0]


def main():
    outdir = parse_args(sys.argv[1:])
    results = load(outdir)
    if not results:
        sys.exit(f"bench_report: no benchmark results in {outdir}")
    set_name, set_tool, floors = floor_set(results)
    with open(os.path.join(outdir, "summary.md"), "w") as f:
        f.write(markdown(results, floors, set_name, set_tool))
    pngs = [png for png, done in
            (("latency.png", plot(results, outdir, floors, set_name)),
             ("upgrade.png", plot_upgrades(results, outdir, floors)),
             ("app.png", plot_app(results, outdir)))
            if done]
    print(f"bench_report: {len(results)} benchmarks -> "
          f"{os.path.join(outdir, 'summary.md')}"
          + "".join(f", {os.path.join(outdir, p)}" for p in pngs))


if __name__ == "__main__":
    main()
