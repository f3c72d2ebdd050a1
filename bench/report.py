#!/usr/bin/python3
"""Turns bench/bench.py's raw.json into docs/benchmarks/results.md and PNG plots.

    report.py RAW_JSON OUT_DIR

Medians over repetitions; a ratio is taken inside each repetition against the
scenario's baseline of the same repetition, and the median of those is shown.
"""
import json
import os
import statistics
import sys

BASELINE = {"catchup": "splice", "fanout": "tee+splice", "archive": "splice",
            "events-syslog": "frame baseline (syslog)", "events-json": "frame baseline (json)",
            "collect": "C baseline (splice socket->pipe->file)"}
# A second CPU ratio where the target names another baseline (fan-out: <= 0.8x the copying
# read-once-write-N).
SECOND_BASELINE = {"fanout": "read once, write N",
                   "collect": "C baseline + fdatasync (100 ms / 4 MiB groups)"}
TITLES = {
    "catchup": "Catch-up: file in page cache from the beginning → 1 TCP sink",
    "fanout": "Fan-out: same file → {sinks} TCP sinks + 1 archive file",
    "archive": "Archive only: file → archive file on the same ext4",
    "events-syslog": "Events as syslog: file from the beginning → 1 receiver, RFC 5424 with octet counting",
    "events-json": "Events as JSON: file from the beginning → 1 receiver, one JSON object per line",
    "collect": "Collector: agents catching up a file each → one receiver (the receiver's CPU)",
}
EVENTS_NOTE = ("Every line becomes one event, so every byte is read into userspace and framed: no "
               "splice here. The baseline is `bench/src/frame_baseline.c` (read 1 MiB blocks, cut lines, "
               "frame, write 1 MiB), the practical limit of a copying framer. MB/s and CPU per GB count "
               "bytes of the source file; the receiver counts frames (syslog) or lines (JSON) and a run "
               "is ok when every line arrived as one. Peers: rsyslog imfile → omfwd "
               "(`RSYSLOG_SyslogProtocol23Format`, `TCP_Framing=\"octet-counted\"`; JSON: a `jsonf` "
               "list template), syslog-ng wildcard-file → `syslog()` destination (RFC 5424, octet "
               "counting; JSON: `network()` with `$(format-json)`).")


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, nd=2):
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.{nd}f}"


def page_reporting_note(v, results):
    """Free page reporting to the host (virtio-balloon) makes fresh page cache cost a host fault per
    page: the header says how the run was set and how much went back to the host meanwhile."""
    ms = v.get("page_reporting_min_free_ms")
    if ms is None:
        return ""
    back = sum(r.get("reported_to_host_kib", 0) for r in results) / 2**20
    return (f" Free pages reported to the host after {ms} ms (`LSB_PAGE_REPORTING_MIN_FREE_MS`); "
            f"{back:.1f} GiB went back to the host during the trials, and the guest pays a host page "
            f"fault when it uses such a page again.")


def order(results):
    seen = []
    for r in results:
        if r["contender"] not in seen:
            seen.append(r["contender"])
    return seen


def by(results, scenario):
    return [r for r in results if r["scenario"] == scenario]


def ratio_median(rs, base_name, key, contender):
    """median over reps of rs[contender][key] / rs[base][key] within the same rep"""
    base = {r["rep"]: r.get(key) for r in rs if r["contender"] == base_name and r.get("ok")}
    vals = [r[key] / base[r["rep"]] for r in rs
            if r["contender"] == contender and r.get("ok") and r.get(key) and base.get(r["rep"])]
    return med(vals)


def transfer_table(rs, scenario, meta):
    base = BASELINE[scenario]
    second = SECOND_BASELINE.get(scenario)
    extra = f" CPU ÷ {second} |" if second else ""
    lines = ["| contender | MB/s | CPU s per GB | peak RSS MiB | MB/s ÷ " + base + " | CPU ÷ " + base + " |" + extra +
             " ok runs |",
             "|---|---|---|---|---|---|---|" + ("---|" if second else "")]
    for c in order(rs):
        mine = [r for r in rs if r["contender"] == c]
        good = [r for r in mine if r.get("ok")]
        kind = mine[0]["kind"]
        label = f"**{c}**" if kind == "agent" else (f"{c} *(baseline)*" if kind == "baseline" else c)
        cells = [label, fmt(med(r.get("mb_s") for r in good)), fmt(med(r.get("cpu_s_per_gb") for r in good)),
                 fmt(med((r.get("maxrss_kib") or 0) / 1024 for r in good)),
                 fmt(ratio_median(rs, base, "mb_s", c)), fmt(ratio_median(rs, base, "cpu_s_per_gb", c))]
        if second:
            cells.append(fmt(ratio_median(rs, second, "cpu_s_per_gb", c)))
        lines.append("| " + " | ".join(cells) + f" | {len(good)}/{len(mine)} |")
    if meta["agent"] != "ok":
        lines.append("| **logsplice** | n/a | n/a | n/a | n/a | n/a |" + (" n/a |" if second else "") + " – |")
    return lines


def live_table(rs):
    lines = ["| contender | CPU % (one core = 100) | max RSS MiB | latency p50 ms | latency p99 ms | latency max ms | ok runs |",
             "|---|---|---|---|---|---|---|"]
    for c in order(rs):
        mine = [r for r in rs if r["contender"] == c]
        good = [r for r in mine if r.get("ok")]
        lines.append("| {} | {} | {} | {} | {} | {} | {}/{} |".format(
            c, fmt(med(r.get("cpu_pct") for r in good), 1),
            fmt(med((r.get("rss_max_kib") or 0) / 1024 for r in good)),
            fmt(med(r.get("lat_p50_ms") for r in good)), fmt(med(r.get("lat_p99_ms") for r in good)),
            fmt(med(r.get("lat_max_ms") for r in good)), len(good), len(mine)))
    return lines


def outage_table(rs):
    lines = ["| contender | RSS before MiB | peak RSS during outage MiB | peak RSS in catch-up MiB | "
             "first byte after collector back s | catch-up time s | catch-up MB/s | ok runs |",
             "|---|---|---|---|---|---|---|---|"]
    for c in order(rs):
        mine = [r for r in rs if r["contender"] == c]
        good = [r for r in mine if r.get("ok")]
        mbs = med((r["rx"]["bytes"] / 1e6) / r["catchup_s"] for r in good if r.get("catchup_s"))
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {}/{} |".format(
            c, fmt(med((r.get("rss_before_kib") or 0) / 1024 for r in good)),
            fmt(med((r.get("rss_outage_max_kib") or 0) / 1024 for r in good)),
            fmt(med((r.get("rss_catchup_max_kib") or 0) / 1024 for r in good)),
            fmt(med(r.get("first_byte_after_s") for r in good)), fmt(med(r.get("catchup_s") for r in good)),
            fmt(mbs), len(good), len(mine)))
    return lines


def glob_table(rs):
    lines = ["| contender | time to ship the first line of every file s | CPU s for that | RSS after MiB | "
             "CPU % idle (nothing written) | CPU % while 1% of files grow | latency p50 / p99 ms while they grow | "
             "RSS MiB | ok runs |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in order(rs):
        mine = [r for r in rs if r["contender"] == c]
        good = [r for r in mine if r.get("ok")]
        scan = fmt(med(r.get("scan_s") for r in good))
        if not good and mine:
            r = mine[0]
            scan = (f"incomplete: {r.get('initial_lines', 0):,} of {r.get('files', 0):,} files after "
                    f"{fmt(r.get('scan_s'))} s; {r.get('rx', {}).get('lines', 0):,} lines in all")
            skipped = sum(1 for x in mine if x.get("skipped"))
            if skipped:
                scan += f" (not run again in {skipped} later reps)"
        lat = "{} / {}".format(fmt(med(r.get("lat_p50_ms") for r in good)), fmt(med(r.get("lat_p99_ms") for r in good)))
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {} | {}/{} |".format(
            c, scan, fmt(med(r.get("scan_cpu_s") for r in good)),
            fmt(med((r.get("rss_after_scan_kib") or 0) / 1024 for r in good)),
            fmt(med(r.get("idle_cpu_pct") for r in good), 2),
            fmt(med(r.get("cpu_pct") for r in good), 1), lat, fmt(med((r.get("rss_kib") or 0) / 1024 for r in good)),
            len(good), len(mine)))
    return lines


def rep_ratio(rs, num, den, key):
    """median over reps of num's `key` / den's `key` within the same rep (both ok), or None"""
    out = []
    for rep in sorted({r.get("rep") for r in rs}):
        a = [r.get(key) for r in rs if r.get("rep") == rep and r["contender"] == num and r.get("ok")]
        b = [r.get(key) for r in rs if r.get("rep") == rep and r["contender"] == den and r.get("ok")]
        if a and b and a[0] is not None and b[0]:
            out.append(a[0] / b[0])
    return med(out)


def ratio_note(rs, num, den, pairs):
    """'*logsplice ÷ syslog-ng (per rep, median): CPU 0.55, RSS 0.07*' for the (label, key) pairs"""
    parts = [f"{label} {fmt(rep_ratio(rs, num, den, key))}" for label, key in pairs]
    return [f"*{num} ÷ {den}, within each rep, median: " + ", ".join(parts) + ".*", ""]


def zc_table(rs):
    lines = ["| contender | bytes through read/write-family syscalls ÷ bytes shipped | bytes through "
             "splice/sendfile/tee ÷ bytes shipped | busiest syscalls (calls) | agent `bytes_copied` |",
             "|---|---|---|---|---|"]
    for r in rs:
        sc = r.get("syscalls", {})
        top = sorted(sc.items(), key=lambda kv: -kv[1][0])[:4]
        tops = ", ".join(f"{k} {v[0]:,}" for k, v in top) or "–"
        m = r.get("metrics_bytes_copied")
        ms = "; ".join(m) if isinstance(m, list) else ("–" if m is None else "endpoint unavailable")
        ok = "" if r.get("ok") else " (incomplete run)"
        lines.append(f"| {r['contender']}{ok} | {r.get('copy_ratio', 0):.3f} | {r.get('zc_ratio', 0):.3f} | {tops} | {ms} |")
    return lines


def plot(results, meta, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scen = [s for s in ("catchup", "fanout", "archive") if by(results, s)]
    if scen:
        fig, axes = plt.subplots(len(scen), 2, figsize=(13, 3.6 * len(scen)), squeeze=False)
        for i, s in enumerate(scen):
            rs = by(results, s)
            names = order(rs)
            colors = ["#888888" if rs[[r["contender"] for r in rs].index(n)]["kind"] == "baseline" else
                      ("#d62728" if rs[[r["contender"] for r in rs].index(n)]["kind"] == "agent" else "#1f77b4")
                      for n in names]
            for j, (key, label) in enumerate((("mb_s", "MB/s (higher is better)"),
                                              ("cpu_s_per_gb", "CPU s per GB (lower is better)"))):
                ax = axes[i][j]
                vals = [[r[key] for r in rs if r["contender"] == n and r.get("ok") and r.get(key)] for n in names]
                m = [statistics.median(v) if v else 0 for v in vals]
                lo = [mm - min(v) if v else 0 for mm, v in zip(m, vals)]
                hi = [max(v) - mm if v else 0 for mm, v in zip(m, vals)]
                ax.barh(names, m, xerr=[lo, hi], color=colors, capsize=3)
                ax.invert_yaxis()
                ax.set_xscale("log")
                ax.set_xlabel(label)
                ax.set_title(f"{s}: {label.split(' (')[0]}", fontsize=10)
                for y, v in enumerate(m):
                    if v:
                        ax.text(v, y, f" {fmt(v)}", va="center", fontsize=8)
        fig.suptitle(f"logsplice bench — median of {meta['config']['reps']} runs, range as error bar; "
                     f"grey = baseline, blue = peer, red = logsplice", fontsize=10)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "throughput_cpu.png"), dpi=110)
        plt.close(fig)
    rs = by(results, "outage")
    if rs:
        fig, ax = plt.subplots(figsize=(9, 4))
        for c in order(rs):
            r = next((x for x in rs if x["contender"] == c and x.get("timeline")), None)
            if r:
                ax.plot([t for t, _ in r["timeline"]], [v / 1024 for _, v in r["timeline"]], label=c)
                ax.axvline(r["t_back_rel"], color="grey", lw=0.5, ls="--")
        ax.set_xlabel("s since the append started (dashed: collector back)")
        ax.set_ylabel("RSS MiB")
        ax.set_title(f"Outage: {meta['config']['outage_bytes'] / 2**20:.0f} MiB appended while the collector refuses")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "outage_rss.png"), dpi=110)
        plt.close(fig)


def main():
    raw, out_dir = sys.argv[1], sys.argv[2]
    data = json.load(open(raw))
    meta, results = data["meta"], data["results"]
    cfg, v = meta["config"], meta["versions"]
    os.makedirs(out_dir, exist_ok=True)
    L = ["# logsplice benchmark results", "",
         f"Generated by `bench/run.sh {' '.join(meta['scenarios'])}` on {meta['time']}. "
         f"Kernel {v['kernel']} (TCP congestion control {v.get('tcp_cc', 'not recorded')}), {v['cpus']} vCPUs (a noisy VM: compare rows of one table, not with other machines). "
         f"Peers: rsyslog {v['rsyslog']}, syslog-ng {v['syslog-ng']} (Debian 12 packages). "
         f"logsplice: {'`' + v['logsplice'] + '`' if meta['agent'] == 'ok' else meta['agent']}."
         + page_reporting_note(v, results), "",
         f"Sizes: catch-up/fan-out/archive/events file {cfg['size'] / 2**20:.0f} MiB "
         f"(rsyslog and syslog-ng: {min(cfg.get('peer_size', cfg['size']), cfg['size']) / 2**20:.0f} MiB of it, "
         "their MB/s and CPU per GB are per byte of what they processed); "
         f"live tail {cfg['live_seconds']:.0f} s, outage {cfg['outage_bytes'] / 2**20:.0f} MiB; "
         f"{cfg['reps']} repetitions, contenders "
         "interleaved round-robin inside each repetition (the starting contender rotates). Cells are medians; "
         "ratios are taken inside each repetition against the baseline of that repetition, then the median. "
         "MB = 10^6 bytes; CPU = user+sys of the whole contender process (all threads, `wait4` rusage, "
         "including start-up and shutdown) per GB of log input; peak RSS = `ru_maxrss`.", ""]
    if cfg["size"] < 1 << 30 or cfg["live_seconds"] < 15 or cfg["reps"] < 5:
        L += [f"*Reduced-size run* (the issue's full sizes are `bench/run.sh` with no LSB_* overrides): "
              f"files {cfg['size'] / 2**20:.0f} MiB, live runs {cfg['live_seconds']:.0f} s × "
              f"{cfg['live_reps'] or cfg['reps']} reps, outage {cfg['outage_bytes'] / 2**20:.0f} MiB, glob "
              f"{cfg['glob_files']:,} files for {cfg['glob_seconds']:.0f} s, zero-copy {cfg['zc_size'] / 2**20:.0f} MiB.", ""]
    if meta["agent"] != "ok":
        L += [f"> **logsplice: n/a.** {meta['agent']}. Re-run `bench/run.sh` once `build/logsplice run` ships "
              "lines; the agent then joins every table (and fan-out gains a `lockstep=false` row).", ""]
    for s in ("catchup", "fanout", "archive"):
        rs = by(results, s)
        if rs:
            L += ["## " + TITLES[s].format(sinks=cfg["fanout_sinks"]), ""] + transfer_table(rs, s, meta) + [""]
    if any(by(results, s) for s in ("catchup", "fanout", "archive")):
        L += ["![throughput and CPU per GB](throughput_cpu.png)", ""]
    for rate in cfg["live_rates"]:
        rs = by(results, f"live-{rate}")
        if rs:
            L += [f"## Live tail: {rate:,} lines/s for {cfg['live_seconds']:.0f} s (one file, stamped lines)", "",
                  "CPU % is the contender's CPU time over the window from the first append to the last line "
                  "received; latency is receipt time minus the time stamped into the line just before its "
                  "`write()`.", ""] + live_table(rs) + [""] + \
                ratio_note(rs, "logsplice", "inotify+splice", [("CPU", "cpu_pct"), ("p99 latency", "lat_p99_ms")])
    for fmt_ in ("syslog", "json"):
        rs = by(results, f"events-{fmt_}")
        if rs:
            L += ["## " + TITLES[f"events-{fmt_}"], "", EVENTS_NOTE, ""] + \
                transfer_table(rs, f"events-{fmt_}", meta) + [""]
    rate = cfg.get("events_live_rate")
    rs = by(results, f"events-live-{rate}")
    if rs:
        L += [f"## Live tail as syslog events: {rate:,} lines/s for {cfg['live_seconds']:.0f} s", "",
              "As the live tail above, each line shipped as an RFC 5424 message with octet counting; the "
              "receiver parses the frames and the stamp at the end of each MSG. No baseline: "
              "frame_baseline does not follow a file.", ""] + live_table(rs) + [""]
    rs = by(results, "outage")
    if rs:
        L += [f"## Outage: collector refusing while {cfg['outage_bytes'] / 2**20:.0f} MiB are appended, then back", "",
              f"The collector's port refuses connections while the generator appends as fast as it can, then "
              f"{cfg['outage_hold']:.0f} s more; then a receiver starts on that port. Catch-up time runs from "
              "that moment to the last byte.", ""] + outage_table(rs) + ["", "![RSS during the outage](outage_rss.png)", ""]
    rs = by(results, "glob")
    if rs:
        r0 = rs[0]
        L += [f"## {r0['files']:,} files matched by one glob, {r0['active']} active", "",
              f"Each file starts with one line (shipped from the beginning); once all are shipped, "
              f"{cfg.get('glob_idle_seconds', 0):.0f} s with nothing written (idle CPU); then {r0['rate']:,} "
              f"lines/s are appended round-robin to {r0['active']} of them for {r0['seconds']:.0f} s. Latency: receipt "
              f"time minus the stamp written into each appended line.", ""] + glob_table(rs) + [""] + \
            ratio_note(rs, "logsplice", "syslog-ng", [("CPU while files grow", "cpu_pct"), ("RSS", "rss_kib"),
                                                      ("idle CPU", "idle_cpu_pct")])
    rs = by(results, "manyfiles")
    if rs:
        r0 = rs[0]
        L += [f"## {r0['files']:,} files under one `**` glob (logsplice alone)", "",
              f"{r0['lines_per_file']} lines each, `start_at: beginning`, default `max_open_files`; "
              "then idle; then 100 files get a line every second (`bench/scenario_manyfiles.py`). "
              "Targets: idle CPU ≤ 1 % of a core, RSS ≤ 128 MiB, checkpoint write ≤ 5 ms.", "",
              "| rep | all lines shipped (s) | idle CPU % | idle RSS MiB | open fds | checkpoint write ms, median / max | compactions |",
              "|---|---|---|---|---|---|---|"]
        for r in rs:
            L.append(f"| {r.get('rep', 0) + 1} | {fmt(r.get('ship_s'))} | {fmt(r.get('idle_cpu_pct'))} | "
                     f"{fmt((r.get('idle_rss_kib') or 0) / 1024, 1)} | {r.get('open_fds')} | "
                     f"{fmt(r.get('ckpt_write_ms_median'))} / {fmt(r.get('ckpt_write_ms_max'))} | "
                     f"{fmt(r.get('ckpt_compactions'), 0)} |")
        L.append("")
    rs = by(results, "zerocopy")
    if rs:
        L += [f"## Zero-copy proof ({cfg['zc_size'] / 2**20:.0f} MiB → 1 TCP sink, under `strace -f`)", "",
              "Byte sums of the return values of every read/write-family call (read, write, pread64, pwrite64, "
              "readv, writev, send*, recv*) against the bytes shipped: a copying shipper moves each byte through "
              "userspace at least twice (≈ 2.0); a zero-copy one stays near 0 (what remains is tail peeks for the last "
              "newline, inotify, eventfd and the like). Splice bytes are counted per call, so file→pipe→socket "
              "shows 2.0.", ""] + zc_table(rs) + [""]
    import scenario_tls  # bench/scenario_tls.py: the `tls` scenario renders its own table
    L += scenario_tls.report_lines(by(results, "tls"), med)
    if any(r["scenario"].startswith("kafka-") for r in results):
        import scenario_kafka
        L += scenario_kafka.report(results)
    rs = by(results, "collect")
    if rs:
        L += ["## " + TITLES["collect"], "",
              f"{rs[0].get('agents')} agents (`logsplice run`) each catch up the same file into one receiver; "
              "CPU and RSS are the receiver's, MB/s counts every agent's bytes until the last landed. "
              "`logsplice collect` (`type: logsplice` outputs, grouped fdatasync, index); the C baseline "
              "`bench/src/mirror_rx.c` (raw `type: tcp`, splice socket → pipe → file, no fsync) and the same with "
              "fdatasync grouped as the collector's defaults (100 ms or 4 MiB: without it the page writeback "
              "happens later in the kernel's flusher threads, in nobody's CPU time); rsyslog "
              "imtcp → omfile (raw `type: tcp`, `%rawmsg%`).", ""] + transfer_table(rs, "collect", meta) + [""]
        names = {r["contender"] for r in rs}
        if {"logsplice collect", "rsyslog imtcp->omfile"} <= names:
            # The targets are against rsyslog: within each rep, as for the baselines.
            L += ratio_note(rs, "logsplice collect", "rsyslog imtcp->omfile",
                            [("MB/s", "mb_s"), ("CPU per GB", "cpu_s_per_gb")])
        # The agents run on the same cores as the receiver: what they spent bounds the receiver.
        agents = [(n, med([r.get("agents_cpu_s_per_gb") for r in rs if r["contender"] == n]))
                  for n in order(rs)]
        if any(v is not None for _, v in agents):
            L += ["*The agents' CPU s per GB (all of them together, same machine), median: " +
                  ", ".join(f"{n} {fmt(v)}" for n, v in agents) + ".*", ""]
    bad = [r for r in results if not r.get("ok")]
    if bad:
        L += ["## Failed or incomplete runs", ""]
        for r in bad:
            rx = r.get("rx", {})
            why = r.get("error") or (f"not run: {r['skipped']}" if r.get("skipped") else None) or \
                (f"receiver {rx.get('status')}: {rx.get('bytes', 0):,} bytes, {rx.get('lines', 0):,} lines")
            L.append(f"* {r['scenario']} / {r['contender']} (rep {r.get('rep', 0) + 1}): {why}")
        L.append("")
    L += ["## Contenders and configs", "",
          "* **splice** *(baseline, the kernel limit)*: `splice(file, &off, pipe, 64 KiB)` then `splice(pipe, socket)`; "
          "**sendfile**: `sendfile(socket, file, &off, 64 KiB)`; **read/write**: `read` 64 KiB into a buffer, "
          "`write` it (the copying path). Fan-out: **tee+splice** (splice the file into one pipe, `tee` it into a "
          "pipe per further sink, splice each pipe to its socket/the archive) and **read once, write N**. "
          "Live tail: **inotify+splice** follows the file with inotify, finds the last complete line with a 4 KiB "
          "`pread` + `memrchr`, splices the batch. All in `bench/src/baseline.c`, blocking sockets.",
          "* **rsyslog**: `rsyslogd -n -f CONF -i PID` with its own work directory: `imfile` (inotify mode, "
          "wildcard) → `omfwd` TCP with `template(string=\"%msg%\\n\")` (the raw line, verified byte-exact), "
          "`action.resumeRetryCount=-1`, `action.resumeInterval=1`; archive: `omfile`. Defaults otherwise.",
          "* **syslog-ng**: the private unpacked Debian `syslog-ng-core` run as `syslog-ng -F --module-path ... -f CONF "
          "-R PERSIST -p PID -c CTL`: `wildcard-file(... flags(no-parse))` → `network(transport(\"tcp\") "
          "template(\"${MESSAGE}\\n\") time-reopen(1))` in a `flags(flow-control)` log path (lossless); tuned "
          "`log-iw-size`/`log-fifo-size` ≥ 100,000 and `log-fetch-limit(1000)` (its defaults ran several times slower "
          "here); archive: `file()` destination.",
          "* **logsplice**: `build/logsplice run --config FILE`, `start_at: beginning`, defaults otherwise "
          "(`agent.batch_delay` 20 ms: changes spread over several files are read after 20 ms, a single file's after "
          "at most 1 ms), tcp and archive outputs, "
          "`lockstep` true and (fan-out) false.",
          "* Receiver: `bench/src/receiver.c` on 127.0.0.1, `splice` socket→pipe→/dev/null for throughput runs, "
          "`read` + line counting + stamp parsing for live and glob runs. Generator: `bench/src/loggen.c` "
          "(seeded nginx-combined-like lines of 100–300 bytes, mean ≈ 210, each ending in ` ts=SECONDS.MICROS`).",
          "", "Raw per-run data: `bench/out/raw.json` of the run (not committed).", ""]
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write("\n".join(L))
    try:
        plot(results, meta, out_dir)
    except ImportError as e:
        print(f"[report] no plot: {e}", file=sys.stderr)
    print(os.path.join(out_dir, "results.md"))


if __name__ == "__main__":
    main()
