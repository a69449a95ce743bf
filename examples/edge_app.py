#!/usr/bin/env python3
"""An edge application's view of edgesync, using nothing but SQLite.

    python3 examples/edge_app.py EDGE_DB [--table T] [--resolve local|central]
                                         [--timeout SECONDS]

With `edgesync run` serving the edge file, it:

1. prints the per-table status (the `es_status` view) and, per table, the
   rows that are not plainly synced (the `es_rows_<table>` views);
2. asks for a sync now (a row in `es_sync_requests`) and waits until the
   daemon has served it, printing the outcome;
3. lists the open manual conflicts parked for this node (`es_conflicts`),
   with the local, central and base versions side by side, and with
   `--resolve` settles every one of them (`UPDATE es_conflicts SET choice`),
   asks for another sync and waits until they are gone from the edge;
4. prints the status again.

It exits 0 when every request was served with outcome 'ok' (and every
conflict chosen was settled), 1 otherwise. The script never writes a synced
table, so any SQLite with JSON support (3.38+) will do; the tables edgesync
syncs need SQLite 3.42+ for writes (the capture triggers use
unixepoch('subsec')).
"""

import argparse
import json
import sqlite3
import sys
import time


def connect(path):
    # Autocommit: every statement below is its own short transaction, so the
    # daemon is never held up by this application.
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.row_factory = sqlite3.Row
    return db


def show_status(db):
    print("tables:")
    for s in db.execute("SELECT * FROM es_status ORDER BY tbl"):
        state = "syncing" if s["syncing"] else "idle"
        print(
            f"  {s['tbl']}: {s['pending']} pending, {s['conflicts']} conflicts, "
            f"{s['quarantined']} quarantined, {state}; last sync {s['last_sync_at']}, "
            f"last push {s['last_push_at']}, last pull {s['last_pull_at']}"
            + (f"; last error: {s['last_error']}" if s["last_error"] else "")
        )
        view = "es_rows_" + s["tbl"]
        for r in db.execute(f'SELECT * FROM "{view}" WHERE NOT synced'):
            key = {k: r[k] for k in r.keys()
                   if k not in ("pending", "deleted", "in_conflict", "quarantined", "synced")}
            flags = [f for f in ("pending", "in_conflict", "quarantined", "deleted") if r[f]]
            print(f"    row {json.dumps(key)}: {', '.join(flags) or 'never synced'}")


def request_sync(db, table, timeout):
    """Ask the daemon for a sync now; wait for it; return (outcome, seconds)."""
    started = time.monotonic()
    cur = db.execute("INSERT INTO es_sync_requests (tbl) VALUES (?)", (table,))
    rid = cur.lastrowid
    while time.monotonic() - started < timeout:
        row = db.execute(
            "SELECT served_at, outcome FROM es_sync_requests WHERE id = ?", (rid,)
        ).fetchone()
        if row["served_at"] is not None:
            return row["outcome"], time.monotonic() - started
        time.sleep(0.05)
    return None, time.monotonic() - started


def show_conflicts(db):
    conflicts = db.execute("SELECT * FROM es_conflicts ORDER BY id").fetchall()
    print(f"open conflicts: {len(conflicts)}")
    for c in conflicts:
        print(f"  #{c['id']} {c['tbl']} {c['key']} (since {c['created_at']})")
        for side in ("local", "central", "base"):
            value = c[side + "_json"]
            shown = json.loads(value) if value is not None else "(deleted)"
            if side == "base" and value is None:
                shown = "(unknown)"
            print(f"      {side:8} {shown}")
        if c["error"]:
            print(f"      last attempt failed: {c['error']}")
    return conflicts


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("edge_db")
    p.add_argument("--table", default=None, help="request a sync of this table only")
    p.add_argument("--resolve", choices=["local", "central"])
    p.add_argument("--timeout", type=float, default=10.0)
    args = p.parse_args()
    db = connect(args.edge_db)
    ok = True

    show_status(db)
    outcome, took = request_sync(db, args.table, args.timeout)
    print(f"sync request: {outcome or 'not served (is edgesync run running?)'} after {took:.2f}s")
    ok &= outcome == "ok"

    conflicts = show_conflicts(db)
    if args.resolve and conflicts:
        ids = [c["id"] for c in conflicts]
        for cid in ids:
            db.execute("UPDATE es_conflicts SET choice = ? WHERE id = ?", (args.resolve, cid))
        print(f"chose {args.resolve} for {ids}")
        outcome, took = request_sync(db, args.table, args.timeout)
        print(f"sync request: {outcome or 'not served'} after {took:.2f}s")
        ok &= outcome == "ok"
        marks = ",".join("?" * len(ids))
        left = db.execute(
            f"SELECT id, error FROM es_conflicts WHERE id IN ({marks})", ids
        ).fetchall()
        for row in left:
            print(f"  #{row['id']} still open: {row['error']}")
        ok &= not left

    show_status(db)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
