#!/usr/bin/env python3
"""Time saved queries with `healthgap query` and with DuckDB on the same Parquet files.

Both engines read the run folder's tables as they are (`<table>.parquet` files and
hive-partitioned `<table>/` folders, `prev_<table>` from --compare) and write the full result as
CSV to /dev/null, so both pay for reading, computing and formatting every row. Before timing,
each query runs once in both and the row counts are compared.

    pip install duckdb
    python3 benches/query_peer.py --fabricate /tmp/hg-bench-run      # a tiny run to try it on
    python3 benches/query_peer.py --run /tmp/hg-bench-run --healthgap target/debug/healthgap

    python3 benches/query_peer.py --run out/latest [--compare out/PREVIOUS] [--repeat 5] \\
        [--queries-dir queries] [NAME ...] [-p KEY=VALUE ...]

Parameters come from `-p`, else from the `e.g. VALUE` of each parameter in the query's header.
Queries naming tables the run lacks are skipped. Prints a Markdown table for benches/RESULTS.md.
Time an optimised build of healthgap: `cargo build --profile bench-fast` (the default binary is
$CARGO_TARGET_DIR/bench-fast/healthgap, else .../release/healthgap).
"""

import argparse
import csv
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMPARE_PREFIX = "prev_"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="saved queries to time (default: all)")
    parser.add_argument("--run", type=Path, help="run folder (or output root with latest)")
    parser.add_argument("--compare", type=Path, help="second run, as prev_<table>")
    parser.add_argument("--queries-dir", type=Path, default=Path("queries"))
    parser.add_argument("--healthgap",
                        help="healthgap binary (default: target/bench-fast/healthgap, else "
                             "target/release/healthgap)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per engine (default 5)")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's)")
    parser.add_argument("--fabricate", type=Path, metavar="DIR",
                        help="write a tiny run folder to DIR (with DuckDB) and exit")
    args = parser.parse_args()
    if not args.fabricate and not args.run:
        parser.error("--run DIR is required (or --fabricate DIR)")
    return args


def import_duckdb():
    try:
        import duckdb
    except ImportError:
        sys.exit("DuckDB's Python package is needed: pip install duckdb")
    return duckdb


# ---------------------------------------------------------------- run folders and tables


def resolve_run(path):
    """The run folder: PATH, or PATH/latest for an output root (as healthgap does)."""
    if (path / "latest").exists():
        path = path / "latest"
    if not path.is_dir():
        sys.exit(f"no run folder at {path}")
    if path.resolve().name.startswith("."):
        sys.exit(f"{path} is a run in progress")
    return path


def tables(run):
    """{name: DuckDB read_parquet(...) expression} for the run's tables."""
    found = {}
    for entry in sorted(run.iterdir()):
        if entry.name.startswith((".", "_")) or entry.name == "latest":
            continue
        if entry.is_file() and entry.suffix.lower() == ".parquet":
            found[entry.stem] = f"read_parquet('{quote(entry)}')"
        elif entry.is_dir() and not (entry / "manifest.json").exists() and any(
            p.suffix.lower() == ".parquet" for p in entry.rglob("*.parquet")
        ):
            found[entry.name] = (
                f"read_parquet('{quote(entry)}/**/*.parquet', hive_partitioning = true)"
            )
    return found


def quote(path):
    return str(path.resolve()).replace("'", "''")


# ---------------------------------------------------------------- saved queries


def header_examples(text):
    """{parameter: example} from the header's `Parameters:` entries (`:name  ... e.g. VALUE`;
    a line indented deeper than the names continues the entry, as healthgap reads it)."""
    entries = {}
    current, indent = None, None
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("--"):
            if line:
                break
            continue
        body = line.lstrip("-")
        match = re.match(r"(\s+):([A-Za-z_]\w*)\s+(.*)", body)
        if match:
            current, indent = match.group(2), len(match.group(1))
            entries[current] = match.group(3)
        elif current and body.strip() and len(body) - len(body.lstrip()) > indent:
            entries[current] += " " + body.strip()
        else:
            current = None
    examples = {}
    for name, description in entries.items():
        example = re.findall(r"e\.g\. ([^\s),;]+)", description)
        if example:
            examples[name] = example[-1].rstrip(".")
    return examples


# A literal, quoted identifier or comment (left alone), or a `:name` placeholder.
TOKEN = re.compile(
    r"""('(?:[^']|'')*')|("(?:[^"]|"")*")|(--[^\n]*)|(/\*.*?\*/)|(::)|:([A-Za-z_]\w*)""",
    re.S,
)


def literal(value):
    """The SQL literal healthgap binds: a plain decimal as a number, else a quoted string."""
    if re.fullmatch(r"-?(0|[1-9]\d*)(\.\d+)?", value):
        return f"({value})" if value.startswith("-") else value
    return "'" + value.replace("'", "''") + "'"


def bind(sql, params):
    def replace(match):
        name = match.group(6)
        if name is None:
            return match.group(0)
        if name not in params:
            raise KeyError(name)
        return literal(params[name])

    return TOKEN.sub(replace, sql)


def placeholders(sql):
    return {m.group(6) for m in TOKEN.finditer(sql) if m.group(6)}


def named_tables(sql):
    """Table names after FROM/JOIN, without CTEs and table functions (enough to skip queries
    over tables a run lacks)."""
    code = TOKEN.sub(lambda m: m.group(0) if m.group(2) or m.group(5) else " ", sql)
    names = set(re.findall(r'\b(?:FROM|JOIN)\s+"?([A-Za-z_]\w*)"?(?!\s*\()', code, re.I))
    ctes = set(re.findall(r'\b"?([A-Za-z_]\w*)"?\s+AS\s*\(', code, re.I))
    return names - ctes


# ---------------------------------------------------------------- engines


def healthgap_command(args, name, params):
    cmd = [args.healthgap, "--quiet", "query", "--run", str(args.run),
           "--queries-dir", str(args.queries_dir), "--name", name, "--format", "csv"]
    if args.compare:
        cmd += ["--compare", str(args.compare)]
    for key, value in params.items():
        cmd += ["--param", f"{key}={value}"]
    return cmd


def time_healthgap(cmd):
    start = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        done = subprocess.run(cmd, stdout=sink, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode(errors="replace").strip())
    return elapsed


def healthgap_rows(cmd):
    done = subprocess.run(cmd, capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode(errors="replace").strip())
    return max(0, sum(1 for _ in csv.reader(done.stdout.decode().splitlines())) - 1)


def duckdb_connection(duckdb, args, run, compare):
    con = duckdb.connect()
    if args.threads:
        con.execute(f"SET threads TO {args.threads}")
    for prefix, folder in (("", run), (COMPARE_PREFIX, compare)):
        if folder is None:
            continue
        for name, source in tables(folder).items():
            con.execute(f'CREATE VIEW "{prefix}{name}" AS SELECT * FROM {source}')
    return con


def time_duckdb(con, sql):
    start = time.perf_counter()
    con.execute(f"COPY ({sql}) TO '{os.devnull}' (FORMAT csv, HEADER)")
    return time.perf_counter() - start


# ---------------------------------------------------------------- a tiny run folder


def fabricate(duckdb, folder):
    """A small run folder with the table names of DESIGN.md §4 (stand-in schemas)."""
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    statements = {
        "footprint_weights.parquet": """
            SELECT 'E0' || lpad(i::VARCHAR, 7, '0') AS lsoa_code, 'pcn' AS footprint_kind,
                   'U' || (10000 + i % 50)::VARCHAR AS footprint_code, 1.0 AS weight,
                   'plurality' AS method
            FROM range(2000) t(i)""",
        "rejects.parquet": """
            SELECT CASE WHEN i % 3 = 0 THEN 'conditions' ELSE 'patients' END AS input,
                   'input-' || (i % 4)::VARCHAR || '.csv' AS file, i::UBIGINT AS line,
                   CASE WHEN i % 2 = 0 THEN 'age' ELSE 'sex' END AS "column",
                   (i % 200)::VARCHAR AS value,
                   CASE WHEN i % 2 = 0 THEN 'above the maximum of 120'
                        ELSE 'unknown sex code' END AS reason
            FROM range(5000) t(i)""",
    }
    for name, query in statements.items():
        con.execute(f"COPY ({query}) TO '{quote(folder / name)}' (FORMAT parquet)")
    patients = """
        SELECT 'p' || i::VARCHAR AS patient_id, (i % 100)::BIGINT AS age,
               (1 + i % 5)::BIGINT AS imd_quintile,
               CASE WHEN i % 2 = 0 THEN 'QHM' ELSE 'QWE' END AS icb_code
        FROM range(20000) t(i)"""
    target = folder / "patients_enriched"
    shutil.rmtree(target, ignore_errors=True)
    con.execute(
        f"COPY ({patients}) TO '{quote(target)}' (FORMAT parquet, PARTITION_BY (icb_code))"
    )
    (folder / "manifest.json").write_text("{}\n")
    print(f"wrote a tiny run folder to {folder}")


# ---------------------------------------------------------------- main


def main():
    args = parse_args()
    duckdb = import_duckdb()
    if args.fabricate:
        fabricate(duckdb, args.fabricate)
        return
    run = resolve_run(args.run)
    compare = resolve_run(args.compare) if args.compare else None
    if args.healthgap is None:
        target = Path(os.environ.get("CARGO_TARGET_DIR", "target"))
        built = [target / profile / "healthgap" for profile in ("bench-fast", "release")]
        found = [str(path) for path in built if path.exists()]
        args.healthgap = found[0] if found else shutil.which("healthgap")
        if args.healthgap is None:
            sys.exit("no healthgap binary: cargo build --profile bench-fast, or pass "
                     "--healthgap PATH")
    given = dict(p.split("=", 1) for p in args.param)

    files = sorted(args.queries_dir.glob("*.sql"))
    if args.names:
        files = [args.queries_dir / f"{n.removesuffix('.sql')}.sql" for n in args.names]
        for path in files:
            if not path.is_file():
                sys.exit(f"no saved query {path}")
    con = duckdb_connection(duckdb, args, run, compare)
    available = {row[0] for row in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}

    print(f"run `{run.resolve().name}`" + (f", compared with `{compare.resolve().name}`"
                                            if compare else "")
          + f"; healthgap `{args.healthgap}`; DuckDB {duckdb.__version__}; "
          + f"{os.cpu_count()} cores; median (min) of {args.repeat} runs, seconds\n")
    print("| query | rows | healthgap | DuckDB |")
    print("|---|---:|---:|---:|")
    for path in files:
        name = path.stem
        text = path.read_text()
        params = {**header_examples(text), **given}
        params = {k: v for k, v in params.items() if k in placeholders(text)}
        missing = named_tables(text) - available
        if missing:
            print(f"| {name} | skipped: no table {', '.join(sorted(missing))} | | |")
            continue
        try:
            sql = bind(text, params).strip().rstrip(";")
        except KeyError as err:
            print(f"| {name} | skipped: no value for :{err.args[0]} (use -p) | | |")
            continue
        cmd = healthgap_command(args, name, params)
        try:
            rows = healthgap_rows(cmd)
        except RuntimeError as err:
            print(f"| {name} | healthgap failed: {err} | | |")
            continue
        duck_rows = con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
        if duck_rows != rows:
            print(f"| {name} | rows differ: healthgap {rows}, DuckDB {duck_rows} | | |")
            continue
        ours = [time_healthgap(cmd) for _ in range(args.repeat)]
        theirs = [time_duckdb(con, sql) for _ in range(args.repeat)]
        print(f"| {name} | {rows:,} | {statistics.median(ours):.3f} ({min(ours):.3f}) "
              f"| {statistics.median(theirs):.3f} ({min(theirs):.3f}) |")


if __name__ == "__main__":
    main()
