#!/usr/bin/python3
"""report.py — joins the JSON lines bench/run.sh collected (convd, torch,
onednn_nchw, onednn_blocked; several passes) into the `make bench` table,
prints it and, with --markdown, writes bench/RESULTS.md.

Each cell is the median over passes of each pass's median time. Ratios are
anchor time / convd time, so > 1 means convd is faster.
"""
import argparse
import collections
import datetime
import json
import statistics
import subprocess
import sys

TOOLS = ("convd", "torch", "onednn_nchw", "onednn_blocked")


def parse_entry(text):
    tok = text.split()
    n, c, h, w = (int(v) for v in tok[1].split(","))
    out, k, stride, pad, dil, groups = (int(v) for v in tok[2:8])
    return dict(kind=tok[0], n=n, c=c, h=h, w=w, out=out, k=k, stride=stride, pad=pad, dilation=dil,
                groups=groups, text=" ".join(tok))


def read_suite(path):
    with open(path) as f:
        lines = [ln.split("#", 1)[0].strip() for ln in f]
    return [parse_entry(ln) for ln in lines if ln]


def label(e):
    extra = f" d{e['dilation']}" if e["dilation"] != 1 else ""
    if e["groups"] != 1:
        extra += " dw" if e["groups"] == e["c"] == e["out"] else f" g{e['groups']}"
    kind = "sep " if e["kind"] == "sep" else ""
    return f"{kind}{e['n']}x{e['c']}x{e['h']}x{e['w']}→{e['out']} k{e['k']} s{e['stride']} p{e['pad']}{extra}"


def load_results(path):
    """(entry text, threads, tool) -> list of per-pass result dicts; and the error lines."""
    cells, errors = collections.defaultdict(list), []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            entry = " ".join(r["entry"].split())
            if "error" in r:
                errors.append(r)
                continue
            cells[(entry, int(r["threads"]), r["tool"])].append(r)
    return cells, errors


def median_of_medians(runs):
    return statistics.median(r["median_ms"] for r in runs) if runs else None


def fmt_ms(v):
    if v is None:
        return "—"
    return f"{v:.3f}" if v < 10 else f"{v:.2f}" if v < 100 else f"{v:.1f}"


def fmt_ratio(num, den):
    return f"{num / den:.2f}×" if num is not None and den else "—"


def markdown_table(header, rows, align):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def build_tables(entries, cells, threads_list):
    t = {}  # (entry, threads, tool) -> median of medians
    for key, runs in cells.items():
        t[key] = median_of_medians(runs)
    rows = []
    for e in entries:
        for th in threads_list:
            get = lambda tool: t.get((e["text"], th, tool))
            convd, torch, nchw, blocked = (get(tool) for tool in TOOLS)
            convd_runs = cells.get((e["text"], th, "convd"), [])
            flops = convd_runs[-1]["flops"] if convd_runs else None
            execution = convd_runs[-1]["execution"] if convd_runs else "—"
            anchors = [v for v in (torch, nchw) if v is not None]
            best = min(anchors) if anchors else None
            gflops = f"{flops / (convd * 1e6):.1f}" if flops and convd else "—"
            rows.append([label(e), str(th), fmt_ms(convd), fmt_ms(torch), fmt_ms(nchw), fmt_ms(blocked), gflops,
                         fmt_ratio(best, convd), fmt_ratio(blocked, convd), execution])
    main = markdown_table(
        ["shape", "threads", "convd ms", "torch ms", "onednn_nchw ms", "onednn_blocked ms", "convd GFLOP/s",
         "best anchor/convd", "onednn_blocked/convd", "convd algorithm"],
        rows, "lrrrrrrrrl")

    sep_rows = []
    for e in entries:
        if e["kind"] != "sep":
            continue
        std = next((s for s in entries if s["kind"] == "conv" and s["groups"] == 1 and
                    all(s[k] == e[k] for k in ("n", "c", "h", "w", "out", "k", "stride", "pad", "dilation"))), None)
        if std is None:
            continue
        flop_ratio = 1.0 / (1.0 / e["out"] + 1.0 / (e["k"] * e["k"]))
        for th in threads_list:
            sp = lambda tool: fmt_ratio(t.get((std["text"], th, tool)), t.get((e["text"], th, tool)))
            gemm = fmt_ratio(t.get((e["text"], th, "convd_gemm")), t.get((e["text"], th, "convd")))
            sep_rows.append([f"{e['c']}→{e['out']} at {e['h']}x{e['w']} k{e['k']}", str(th), f"{flop_ratio:.2f}×",
                             sp("convd"), gemm, sp("torch"), sp("onednn_nchw")])
    sep = markdown_table(
        ["separable pair", "threads", "FLOP ratio 1/(1/n+1/k²)", "convd t(std)/t(sep)",
         "convd t(std as im2col GEMM)/t(sep)", "torch t(std)/t(sep)", "onednn_nchw t(std)/t(sep)"],
        sep_rows, "lrrrrrr")
    fastest = {key: min(r["min_ms"] for r in runs) for key, runs in cells.items() if runs}
    min_rows = []
    for e in entries:
        for th in threads_list:
            convd, torch, nchw, blocked = (fastest.get((e["text"], th, tool)) for tool in TOOLS)
            anchors = [v for v in (torch, nchw) if v is not None]
            min_rows.append([label(e), str(th), fmt_ms(convd), fmt_ms(torch), fmt_ms(nchw), fmt_ms(blocked),
                             fmt_ratio(min(anchors) if anchors else None, convd), fmt_ratio(blocked, convd)])
    mins = markdown_table(
        ["shape", "threads", "convd min ms", "torch min ms", "onednn_nchw min ms", "onednn_blocked min ms",
         "best anchor/convd", "onednn_blocked/convd"],
        min_rows, "lrrrrrrr")
    return main, sep, mins


def spread_note(cells):
    """Per tool, the median over cells of (max - min) / median of the per-pass medians."""
    by_tool = collections.defaultdict(list)
    for (_, _, tool), runs in cells.items():
        m = [r["median_ms"] for r in runs]
        if len(m) > 1 and statistics.median(m) > 0:
            by_tool[tool].append((max(m) - min(m)) / statistics.median(m))
    parts = [f"{tool} {100 * statistics.median(by_tool[tool]):.0f}%" for tool in TOOLS if by_tool[tool]]
    return ", ".join(parts)


def version_of(cells, tool):
    for (_, _, t), runs in cells.items():
        if t == tool and runs and "version" in runs[0]:
            return runs[0]["version"]
    return "unknown"


def git_revision():
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True).stdout.strip()
        return rev + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", required=True, help="JSON lines from bench/run.sh")
    ap.add_argument("--suite", default="bench/suite.txt")
    ap.add_argument("--markdown", help="also write the report here (bench/RESULTS.md)")
    ap.add_argument("--machine", default="unknown")
    ap.add_argument("--command", default="make bench")
    ap.add_argument("--convd-version", default="convd")
    ap.add_argument("--seconds", type=int, default=0, help="how long the run took")
    ap.add_argument("--omp-wait-policy", default="default", help="OMP_WAIT_POLICY torch and oneDNN ran with")
    ap.add_argument("--load", nargs=2, metavar=("BEFORE", "AFTER"),
                    help="/proc/loadavg's 1, 5, 15-minute figures before and after the run")
    a = ap.parse_args()

    entries = read_suite(a.suite)
    cells, errors = load_results(a.results)
    threads_list = sorted({th for (_, th, _) in cells} | {int(r["threads"]) for r in errors})
    passes = max((r["pass"] for runs in cells.values() for r in runs), default=0)
    main_table, sep_table, min_table = build_tables(entries, cells, threads_list)

    print(main_table)
    print()
    print(sep_table)
    for r in errors:
        print(f"error: {r['tool']} on '{r['entry']}' with {r['threads']} threads: {r['error']}", file=sys.stderr)
    if not a.markdown:
        return 0

    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# convd against PyTorch and oneDNN",
        "",
        "Written by `make bench` (bench/run.sh, bench/report.py); rerun it to refresh.",
        "",
        f"- machine: {a.machine}" + (f"; load average {a.load[0]} before the run, {a.load[1]} after it"
                                       if a.load else ""),
        f"- date: {date}" + (f", the run took {a.seconds} s" if a.seconds else ""),
        f"- command: `{a.command}`",
        f"- versions: {a.convd_version} at {git_revision()}, torch {version_of(cells, 'torch')}"
        f" (Debian python3-torch), oneDNN {version_of(cells, 'onednn_nchw')} (Debian libdnnl-dev)",
        "",
        "How it is measured:",
        "",
        "- Every entry of bench/suite.txt, float32, NCHW, with bias; weights and input random.",
        "- convd: `convd bench --layer ... --json` — the layer created and planned once (weights packed as at",
        "  model load), only `conv_model_run` timed. torch: `nn.Conv2d` in eval mode under `torch.no_grad()`,",
        "  `torch.set_num_threads(T)`. oneDNN: `dnnl_convolution_forward` with `dnnl_convolution_auto`, threads",
        "  by `OMP_NUM_THREADS`; *onednn_nchw* takes NCHW in and out, with the reorders to and from the",
        "  primitive's preferred layout timed in every run (weights reordered once, untimed); *onednn_blocked* is",
        "  the primitive alone in its preferred (blocked) layout.",
        f"- OpenMP wait policy of torch and oneDNN: {a.omp_wait_policy}"
        + (" (`OMP_WAIT_POLICY=passive`: chosen because the machine was busy at the start; spin-waiting"
           " OpenMP threads lose whole scheduler slices when other processes hold the cores. convd's pool"
           " sleeps on a condition variable too)" if a.omp_wait_policy == "passive" else
           " (the library's own)" if a.omp_wait_policy == "default" else "") + ".",
        "- A separable entry (`sep`) is convd's fused SeparableConv2d layer; for torch and oneDNN it is the",
        "  depthwise and the pointwise Conv2d run back to back, each timed in the same iteration, summed.",
        "- Each measurement: warm-up, then at least 20 timed runs and the configured minimum time; its median.",
        f"  For each entry and thread count the three tools run back to back (order rotating); the suite ran {passes}",
        "  times and each cell is the median of the per-pass medians.",
        "- best anchor = the faster of torch and onednn_nchw; ratios are anchor time / convd time, so > 1 means",
        "  convd is faster.",
        f"- Noise: per-pass medians of one cell varied by (median over cells) {spread_note(cells) or 'n/a'}"
        " (max − min over their median).",
        "",
        "## Per layer",
        "",
        main_table,
        "",
        "## Separable layers: realised speedup over the standard convolution",
        "",
        "t(standard Conv2d with the same in/out channels, kernel, stride and padding) / t(separable), next to",
        "the FLOP ratio 1/(1/n + 1/k²) (n = out channels) it could reach at best. convd's standard layer is its",
        "default algorithm (Winograd for these 3×3 layers, which does 4× fewer multiplies than the FLOP ratio",
        "counts); the next column times the standard layer as an im2col GEMM, doing every multiply counted.",
        "",
        sep_table,
        "",
        "## Fastest single run",
        "",
        "The minimum over all timed runs of all passes: what each library does when the machine leaves it",
        "alone. Less representative than the medians above, but much less moved by other processes.",
        "",
        min_table,
        "",
    ]
    if a.load and float(a.load[0].split()[0]) >= 0.5:
        lines[lines.index("## Per layer")] = (
            f"**The machine was busy when this ran (load average {a.load[0].split()[0]} at the start).** Other "
            "processes take cores away in bursts, so 2-thread figures above all are noisy: "
            "compare with the fastest-run table at the end.\n\n## Per layer")
    if errors:
        lines += ["## Failures", ""]
        lines += [f"- {r['tool']} on `{r['entry']}` with {r['threads']} threads (pass {r['pass']}): {r['error']}"
                  for r in errors]
        lines.append("")
    written = "\n".join(lines).split("\n")  # some entries hold several lines
    lines += kept_sections(a.markdown, {l for l in written if l.startswith("## ")})
    with open(a.markdown, "w") as f:
        f.write("\n".join(lines))
    print(f"\nwrote {a.markdown}", file=sys.stderr)
    return 0


def kept_sections(path, generated):
    """The "## " sections of an existing RESULTS.md that this report does not
    write (service overhead, batching, load tool...): other measurements live
    in the same file and a bench run must not drop them."""
    try:
        with open(path) as f:
            old = f.read().split("\n")
    except OSError:
        return []
    kept, keep = [], False
    for line in old:
        if line.startswith("## "):
            keep = line not in generated and line != "## Failures"
        elif line.startswith("# "):
            keep = False
        if keep:
            kept.append(line)
    return kept


if __name__ == "__main__":
    sys.exit(main())
