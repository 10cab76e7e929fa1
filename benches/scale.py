#!/usr/bin/env python3
"""National scale on one machine, measured against peers (issue 9).

One command: generates synthetic data at each size (reusing files when present), runs the full
healthgap pipeline on each, runs the peers on the same files (DuckDB doing the equivalent SQL
for enrich + membership attribution + indicator aggregation by footprint x IMD decile, and a
bare scan that reads every input column once), and writes the results with the machine's facts
into benches/RESULTS.md between the markers of the "National scale (issue 9)" section.

    python3 benches/scale.py                       # 1m and 10m
    python3 benches/scale.py --sizes 1m,10m,england
    python3 benches/scale.py --binary target/bench-fast/healthgap --work /data/hg-bench
    python3 benches/scale.py --sizes england --repeat 3   # medians of three runs each

Before each size's runs the generated inputs are read once, unmeasured, so that the first tool
timed does not pay for a cold page cache. With `--repeat N`, healthgap, DuckDB and the scan run
N times each, in turn, and the table gives each one's median run (healthgap's stages are its
median run's), with healthgap's range of wall times below it: on a shared host the same binary
can vary by a fifth between runs.

Needs: an optimised healthgap build (default: `cargo build --profile bench-fast`, which this
script runs), /usr/bin/time (Debian package `time`), and DuckDB's Python package
(`pip install duckdb`). Peak memory is the maximum resident set size reported by
`/usr/bin/time -v`; wall and CPU times come from the same report, per-stage times from the
run's manifest.json.
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SIZES = {"1m": ["--patients", "1000000"], "10m": ["--patients", "10000000"], "england": ["--scale", "england"]}
MARK_START = "<!-- scale:start -->"
MARK_END = "<!-- scale:end -->"


def sh(cmd, **kw):
    print("+", " ".join(str(c) for c in cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, **kw)


def timed(cmd, log):
    """Run cmd under /usr/bin/time -v; return (wall s, cpu s, peak RSS GiB)."""
    with open(log, "w") as err:
        sh(["/usr/bin/time", "-v", *cmd], stderr=err, stdout=subprocess.DEVNULL)
    text = Path(log).read_text()

    def field(name):
        m = re.search(rf"{re.escape(name)}: (.+)", text)
        return m.group(1).strip() if m else ""

    wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    parts = [float(p) for p in wall.split(":")]
    seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    cpu = float(field("User time (seconds)") or 0) + float(field("System time (seconds)") or 0)
    rss_gib = float(field("Maximum resident set size (kbytes)") or 0) / 1024 / 1024
    return seconds, cpu, rss_gib


def machine():
    cpu = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        m = re.search(r"Model name:\s+(.+)", out)
        cpu = m.group(1).strip() if m else ""
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), {mem} memory, {platform.system()} {platform.release()}"


def generate(binary, size, data):
    if (data / "truth.json").exists():
        print(f"reusing {data}", file=sys.stderr)
        return None
    data.mkdir(parents=True, exist_ok=True)
    return timed([binary, "--quiet", "synth", *SIZES[size], "--seed", "1", "--out", data,
                  "--config", REPO / "healthgap.toml"], data / "synth.time")


def bench_config(data):
    """The demo's indicators and segmentations over the generated data (20 indicators)."""
    sys.path.insert(0, str(REPO / "benches"))
    text = (data / "healthgap.toml").read_text()
    demo = (REPO / "src" / "demo.rs").read_text()
    sections = demo[demo.index('r#"') + 3: demo.index('"#;')]
    text += sections
    # Eight more indicators, to the 20 the issue asks for: each outcome by life stage.
    extra = []
    for code, polarity in [("bp_controlled", "high_is_good"), ("flu_vaccinated", "high_is_good"),
                           ("current_smoker", "low_is_good"), ("cervical_screened", "high_is_good")]:
        for band, rule in [("working_age", "age BETWEEN 18 AND 64"), ("older", "age >= 65")]:
            extra.append(f'''
[[indicators]]
id = "{code}_{band}"
name = "{code} ({band})"
type = "proportion"
numerator = "{code} = 1"
denominator = "{code} IS NOT NULL AND {rule}"
polarity = "{polarity}"
''')
    text += "".join(extra)
    config = data / "bench.toml"
    config.write_text(text)
    return config


def run_healthgap(binary, config, out):
    if out.exists():
        shutil.rmtree(out)
    log = out.parent / f"{out.name}.time"
    wall, cpu, rss = timed([binary, "--quiet", "run", "--config", config, "--out", out, "--run-id", "bench"], log)
    manifest = json.loads((out / "bench" / "manifest.json").read_text())
    return wall, cpu, rss, manifest


PEER_SQL = """
WITH imd AS (
  SELECT "LSOA code (2011)" AS lsoa_code,
         CAST("Index of Multiple Deprivation (IMD) Decile (where 1 is most deprived 10% of LSOAs)" AS INT) AS imd_decile
  FROM '{data}/iod2019_lsoa11.parquet'),
pcn AS (
  SELECT "Partner Organisation Code" AS practice_code, arg_max("PCN Code", "Practice to PCN Relationship Start Date") AS pcn_code
  FROM '{data}/epcn_members_2023-02.parquet'
  WHERE "Practice to PCN Relationship Start Date" <= '20230201'
    AND (coalesce("Practice to PCN Relationship End Date", '') = '' OR "Practice to PCN Relationship End Date" >= '20230201')
  GROUP BY 1),
icb AS (SELECT column_1 AS practice_code, column_4 AS icb_code FROM '{data}/epraccur_2023-02.parquet'),
patients AS (
  SELECT p.patient_id, p.practice_code, i.imd_decile, pcn.pcn_code, icb.icb_code
  FROM '{gen}/patients.parquet' p
  LEFT JOIN imd i ON i.lsoa_code = p.lsoa_code
  LEFT JOIN pcn ON pcn.practice_code = p.practice_code
  LEFT JOIN icb ON icb.practice_code = p.practice_code),
conditions AS (
  SELECT patient_id, count(*) AS conditions FROM '{gen}/conditions.parquet' GROUP BY 1),
rows AS (
  SELECT o.indicator, o.value, p.practice_code, p.pcn_code, p.icb_code, p.imd_decile,
         coalesce(c.conditions, 0) AS conditions
  FROM '{gen}/outcomes.parquet' o
  JOIN patients p USING (patient_id)
  LEFT JOIN conditions c USING (patient_id))
SELECT 'practice' AS level, practice_code AS code, indicator, imd_decile, sum(value) AS numerator, count(*) AS denominator FROM rows GROUP BY ALL
UNION ALL SELECT 'pcn', pcn_code, indicator, imd_decile, sum(value), count(*) FROM rows GROUP BY ALL
UNION ALL SELECT 'icb', icb_code, indicator, imd_decile, sum(value), count(*) FROM rows GROUP BY ALL
UNION ALL SELECT 'england', 'E92000001', indicator, imd_decile, sum(value), count(*) FROM rows GROUP BY ALL
"""


def warm_page_cache(gen):
    """Read the generated inputs once, so that no timed run starts with them on disk only."""
    for path in sorted(gen.glob("*.parquet")):
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass


def median_run(runs, wall=lambda run: run[0]):
    """The run with the median wall time (the lower of the middle two for an even count)."""
    return sorted(runs, key=wall)[(len(runs) - 1) // 2]


def run_peer(script, label, work):
    path = work / f"{label}.py"
    path.write_text(script)
    return timed([sys.executable, path], work / f"{label}.time")


def duckdb_script(gen, out_file):
    sql = PEER_SQL.format(data=REPO / "data", gen=gen).replace("\n", " ")
    return f"""import duckdb
con = duckdb.connect()
con.execute({json.dumps(f"COPY ({sql}) TO '{out_file}' (FORMAT parquet)")})
"""


def scan_script(gen):
    files = ["patients", "conditions", "outcomes"]
    return f"""import duckdb
con = duckdb.connect()
for name in {files!r}:
    cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM '{gen}/{{name}}.parquet'").fetchall()]
    aggs = ", ".join(f'max("{{c}}")' for c in cols)
    con.execute(f"SELECT count(*), {{aggs}} FROM '{gen}/{{name}}.parquet'").fetchall()
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1m,10m", help="comma list of 1m, 10m, england")
    parser.add_argument("--binary", help="healthgap binary (default: build --profile bench-fast)")
    parser.add_argument("--work", default=str(REPO / "bench-data"), help="data and outputs")
    parser.add_argument("--no-write", action="store_true", help="print the results only")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each tool per size; the table gives medians (default 1)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be 1 or more")

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    binary = args.binary
    if not binary:
        started = time.time()
        sh(["cargo", "build", "--profile", "bench-fast"], cwd=REPO)
        print(f"build: {time.time() - started:.0f} s", file=sys.stderr)
        target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
        binary = str(target / "bench-fast" / "healthgap")

    rows = []
    for size in args.sizes.split(","):
        gen = work / f"data-{size}"
        synth = generate(binary, size, gen)
        config = bench_config(gen)
        warm_page_cache(gen)
        runs, ducks, scans = [], [], []
        for _ in range(args.repeat):
            runs.append(run_healthgap(binary, config, work / f"out-{size}"))
            ducks.append(run_peer(duckdb_script(gen, work / f"duckdb-{size}.parquet"), f"duckdb-{size}", work))
            scans.append(run_peer(scan_script(gen), f"scan-{size}", work))
        wall, cpu, rss, manifest = median_run(runs)
        walls = sorted(run[0] for run in runs)
        stages = {s["stage"]: s["seconds"] for s in manifest["stages"]}
        duck, scan = median_run(ducks), median_run(scans)
        counts = {i["input"]: i["rows_read"] for i in manifest["inputs"] if i["input"] in ("patients", "conditions", "outcomes")}
        # The steps DuckDB also does: ingest (read and check), enrich + attribute, measure.
        comparable = sum(v for k, v in stages.items() if k in ("ingest", "enrich, attribute and segment", "measure"))
        rows.append((size, counts, synth, wall, cpu, rss, stages, comparable, duck, scan, walls))

    repeat = f" --repeat {args.repeat}" if args.repeat > 1 else ""
    lines = [MARK_START, "", f"Machine: {machine()}. Measured {time.strftime('%Y-%m-%d')} with `python3 benches/scale.py --sizes {args.sizes}{repeat}` (binary `{binary}`).", ""]
    if args.repeat > 1:
        lines += [f"Each figure is its tool's median run of {args.repeat}; healthgap's stages are from its median run.", ""]
    lines.append("| size | patients | conditions | outcomes | synth wall / peak | healthgap wall | CPU | peak RSS | comparable steps | DuckDB wall / peak | bare scan | healthgap ÷ DuckDB (comparable) | healthgap ÷ scan |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size, counts, synth, wall, cpu, rss, stages, comparable, duck, scan, _ in rows:
        synth_text = f"{synth[0]:.0f} s / {synth[2]:.1f} GiB" if synth else "reused"
        lines.append(
            f"| {size} | {counts.get('patients', 0):,} | {counts.get('conditions', 0):,} | {counts.get('outcomes', 0):,} | {synth_text} | "
            f"{wall:.1f} s | {cpu:.1f} s | {rss:.1f} GiB | {comparable:.1f} s | {duck[0]:.1f} s / {duck[2]:.1f} GiB | {scan[0]:.1f} s | "
            f"{comparable / duck[0]:.2f} | {wall / scan[0]:.2f} |")
    if args.repeat > 1:
        lines.append("")
        lines.append("healthgap's wall times over the runs: " + "; ".join(f"{r[0]} " + ", ".join(f"{w:.1f}" for w in r[10]) + " s" for r in rows) + ".")
    lines.append("")
    lines.append("Per-stage wall time (s), from each run's manifest:")
    lines.append("")
    stage_names = list(rows[0][6].keys()) if rows else []
    lines.append("| stage | " + " | ".join(r[0] for r in rows) + " |")
    lines.append("|---|" + "---|" * len(rows))
    for stage in stage_names:
        lines.append(f"| {stage} | " + " | ".join(f"{r[6].get(stage, 0):.1f}" for r in rows) + " |")
    lines += ["", MARK_END]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        results = REPO / "benches" / "RESULTS.md"
        text = results.read_text() if results.exists() else "# Benchmark results\n"
        if MARK_START in text and MARK_END in text:
            text = text[: text.index(MARK_START)] + section + text[text.index(MARK_END) + len(MARK_END):]
        else:
            text += "\n## National scale (issue 9)\n\n" + section + "\n"
        results.write_text(text)


if __name__ == "__main__":
    main()
