"""Copies a drift benchmark's canonical cases and search documents into PostgreSQL, runs
reladiff (hashdiff: checksums over key ranges with bisection) on them, and compares what it
found with what was injected and with what Canon found. Called by scripts/bench-drift."""
import argparse
import io
import os
import json
import sqlite3
import subprocess
import time

import psycopg2

COLUMNS = ["title", "summary", "status", "sector", "region", "priority", "team", "assignee", "restricted", "clearance"]


def copy(cursor, table, rows):
    cursor.execute(f"DROP TABLE IF EXISTS {table}")
    cursor.execute(f"CREATE TABLE {table} (id text PRIMARY KEY, " + ", ".join(
        f"{c} {'integer' if c in ('restricted', 'clearance') else 'text'}" for c in COLUMNS) + ")")
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v).replace("\\", "\\\\").replace("\t", " ").replace("\n", " ") for v in row) + "\n")
    buffer.seek(0)
    cursor.copy_from(buffer, table, columns=["id"] + COLUMNS)
    cursor.execute(f"ANALYZE {table}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--postgres", required=True)
    parser.add_argument("--reladiff", required=True)
    args = parser.parse_args()

    canonical = sqlite3.connect(f"{args.store}/canonical.sqlite")
    cases = canonical.execute(
        "SELECT id, title, summary, status, sector, region, priority, team, assignee, restricted, clearance FROM cases").fetchall()
    search = sqlite3.connect(f"{args.store}/case-search.v9.sqlite")
    docs = search.execute(
        "SELECT d.key, f.title, f.summary, d.f_status, d.f_sector, d.f_region, d.f_priority, d.team, d.f_assignee, d.restricted, d.clearance "
        "FROM docs d LEFT JOIN docs_fts f ON f.rowid = d.id").fetchall()
    connection = psycopg2.connect(args.postgres)
    connection.autocommit = True
    with connection.cursor() as cursor:
        started = time.monotonic()
        copy(cursor, "canonical_cases", cases)
        copy(cursor, "search_docs", docs)
        print(f"loaded {len(cases)} canonical rows and {len(docs)} search rows into PostgreSQL in {time.monotonic() - started:.1f}s")

    injected = json.load(open(f"{args.store}/drift-injected.json"))
    canon_found = json.load(open(f"{args.store}/drift-found.json"))
    url = args.postgres.replace("postgres://", "postgresql://", 1)
    environment = dict(os.environ, COLUMNS="1000000")
    for threads in (1, 2):
        command = [args.reladiff, url, "canonical_cases", url, "search_docs", "-k", "id", "-a", "hashdiff",
                   "-j", str(threads), "--json"] + sum((["-c", c] for c in COLUMNS), [])
        started = time.monotonic()
        result = subprocess.run(command, capture_output=True, text=True, env=environment)
        seconds = time.monotonic() - started
        if result.returncode != 0 or "ERROR" in result.stderr:
            print(result.stderr)
            raise SystemExit(f"reladiff failed with {result.returncode}")
        signs = {}
        for line in result.stdout.splitlines():
            if not line.strip():
                continue
            sign, row = json.loads(line)
            signs.setdefault(row[0], set()).add(sign)
        kinds = {key: ("stale" if len(s) == 2 else "missing" if "-" in s else "extra") for key, s in signs.items()}
        exact = sum(1 for key, kind in kinds.items() if injected.get(key) == kind)
        print(f"reladiff -j {threads}: {len(cases)} vs {len(docs)} rows in {seconds:.2f}s = {max(len(cases), len(docs)) / seconds:.0f} rows/s; "
              f"found {len(kinds)} ({exact} exactly as injected, {sum(1 for k in kinds if k not in injected)} not injected)")
    missed = [key for key in injected if key not in canon_found]
    print(f"canon found {len(canon_found)} of {len(injected)} injected; missed {len(missed)}")


if __name__ == "__main__":
    main()
