"""The durable outbox: ``activation.outbox`` and ``activation.pushed_state`` in the warehouse.

One outbox row per intended external change. Planning writes rows (``enqueue``) in the same
transaction that decides them; sending is a separate step that drains the open rows and records
each acknowledgement. Row life cycle (see activate/README.md for the whole argument):

    pending --mark_sending--> sending --ack--> sent
                                  |----------> failed --(next send)--> sending ... --> dead (attempt limit)
                                  |----------> pending (transient fault outlasted the back-off: resume later)
    pending/sending/failed --(a newer plan for the same key)--> superseded

``pushed_state`` holds, per (target, object, record_key), the payload of the last acknowledged
send: the next plan diffs against it, so a rerun with nothing new enqueues nothing and sends nothing.
``outbox_id`` is a hash of (run_id, target, object, record_key, payload_hash): re-planning the same
run inserts nothing new.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb
import polars as pl

import northstar.warehouse
from northstar.settings import Settings, settings

OPEN = ("pending", "sending", "failed")
STATUSES = ("pending", "sending", "sent", "failed", "dead", "superseded")

DDL = """
create schema if not exists activation;
create table if not exists activation.outbox (
    outbox_id varchar not null,
    target varchar not null,
    object varchar not null,
    operation varchar not null,
    record_key varchar not null,
    payload varchar not null,
    payload_hash varchar not null,
    status varchar not null,
    attempts integer not null,
    last_error varchar,
    run_id varchar not null,
    send_run_id varchar,
    external_ref varchar,
    external_number varchar,
    source_ref varchar,
    effective_at timestamp,
    model_version varchar,
    mlflow_run_id varchar,
    scoring_run_id varchar,
    dbt_invocation_id varchar,
    created_at timestamp not null,
    updated_at timestamp not null,
    sent_at timestamp,
);
create table if not exists activation.pushed_state (
    target varchar not null,
    object varchar not null,
    record_key varchar not null,
    payload varchar not null,
    payload_hash varchar not null,
    external_ref varchar,
    external_number varchar,
    outbox_id varchar not null,
    pushed_at timestamp not null,
);
create table if not exists activation.send_runs (
    send_run_id varchar not null,
    target varchar not null,
    started_at timestamp not null,
    finished_at timestamp,
    kill_switch boolean not null,
    api_calls integer,
    rows_sent integer,
    rows_failed integer,
    rows_dead integer,
    interrupted boolean,
    detail varchar,
);
"""

CANDIDATE_COLUMNS = (
    "outbox_id", "target", "object", "operation", "record_key", "payload", "payload_hash", "run_id",
    "source_ref", "effective_at", "model_version", "mlflow_run_id", "scoring_run_id", "dbt_invocation_id",
)


def connect(cfg: Settings | None = None, path: Path | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """The warehouse through the seam; a writer also makes sure the outbox tables exist.

    ``read_only=True`` is for operators (``status``, ``trace``): it never takes the write lock, so a
    person looking at the outbox cannot fail a running DAG task, and it waits while a task writes.
    """
    cfg = cfg or settings()
    target = Path(path or cfg.paths.warehouse)
    if read_only:
        return northstar.warehouse.connect(read_only=True, cfg=cfg, path=target)
    con = northstar.warehouse.connect(cfg=cfg, path=target)
    ensure_schema(con)
    return con


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pl.DataFrame:
    """A query's result as a polars frame (fully fetched, so the connection is free afterwards)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # DuckDB 2: "extra copy" note for DB-API results
        return pl.from_arrow(con.execute(sql, params or []).to_arrow_table())


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)


def payload_hash(payload: str) -> str:
    return hashlib.sha256(payload.encode()).hexdigest()


def outbox_id(run_id: str, target: str, obj: str, record_key: str, digest: str) -> str:
    return hashlib.sha256(f"{run_id}\x1f{target}\x1f{obj}\x1f{record_key}\x1f{digest}".encode()).hexdigest()[:32]


def canonical_json(payload: dict) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    return bool(con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name],
    ).fetchall()[0][0])


def enqueue(con: duckdb.DuckDBPyConnection, candidates: str) -> int:
    """Insert the rows of the temp table/view ``candidates`` (CANDIDATE_COLUMNS) into the outbox.

    Idempotent: a row whose ``outbox_id`` exists, or whose key already has an open or dead row with
    the same payload hash, is dropped. Open rows of a key that gets a new payload are superseded.
    Runs in one transaction with whatever the caller did before (the caller commits).
    """
    cols = ", ".join(CANDIDATE_COLUMNS)
    con.execute(f"""
        create or replace temp table _activation_new as
        select {cols} from {candidates} as c
        where not exists (select 1 from activation.outbox as o where o.outbox_id = c.outbox_id)
          and not exists (
              select 1 from activation.outbox as o
              where o.target = c.target and o.object = c.object and o.record_key = c.record_key
                and o.payload_hash = c.payload_hash and o.status in ('pending', 'sending', 'failed', 'dead')
          )
    """)  # noqa: S608 - fixed identifiers, values bound as parameters
    con.execute("""
        update activation.outbox as o
        set status = 'superseded', updated_at = now(), last_error = 'superseded by run ' || n.run_id
        from _activation_new as n
        where o.target = n.target and o.object = n.object and o.record_key = n.record_key
          and o.status in ('pending', 'sending', 'failed')
    """)
    con.execute(f"""
        insert into activation.outbox (
            {cols}, status, attempts, last_error, send_run_id, external_ref, external_number,
            created_at, updated_at, sent_at
        )
        select {cols}, 'pending', 0, null, null, null, null, now(), now(), null from _activation_new
    """)  # noqa: S608 - fixed identifiers, values bound as parameters
    added = con.execute("select count(*) from _activation_new").fetchall()[0][0]
    con.execute("drop table _activation_new")
    return int(added)


def open_rows(con: duckdb.DuckDBPyConnection, target: str, obj: str | None = None) -> pl.DataFrame:
    sql = """
        select outbox_id, target, object, operation, record_key, payload, payload_hash, status, attempts,
               source_ref, external_ref
        from activation.outbox
        where target = ? and status in ('pending', 'sending', 'failed')
    """
    params: list = [target]
    if obj is not None:
        sql += " and object = ?"
        params.append(obj)
    sql += " order by object, created_at, record_key"
    return frame(con, sql, params)


def _ids_frame(ids: Sequence[str]) -> pl.DataFrame:
    return pl.DataFrame({"outbox_id": list(ids)}, schema={"outbox_id": pl.String})


def mark_sending(con: duckdb.DuckDBPyConnection, ids: Sequence[str], send_run_id: str) -> None:
    """Record the intent before the external call (committed, so a crash leaves 'sending')."""
    con.register("_ids", _ids_frame(ids))
    con.execute("begin")
    con.execute("""
        update activation.outbox as o
        set status = 'sending', attempts = o.attempts + 1, send_run_id = ?, updated_at = now()
        from _ids as f where o.outbox_id = f.outbox_id
    """, [send_run_id])
    con.execute("commit")
    con.unregister("_ids")


def ack(
    con: duckdb.DuckDBPyConnection,
    successes: Iterable[tuple[str, str | None, str | None]] = (),
    failures: Iterable[tuple[str, str]] = (),
    max_attempts: int = 5,
) -> tuple[int, int, int]:
    """Record results in one transaction: (outbox_id, external_ref, number) sent; (outbox_id, error) failed.

    A failure whose row has reached ``max_attempts`` becomes dead. Returns (sent, failed, dead).
    """
    ok = pl.DataFrame(list(successes), schema={"outbox_id": pl.String, "external_ref": pl.String,
                                               "external_number": pl.String}, orient="row")
    bad = pl.DataFrame(list(failures), schema={"outbox_id": pl.String, "error": pl.String}, orient="row")
    con.execute("begin")
    if ok.height:
        con.register("_ack_ok", ok)
        con.execute("""
            update activation.outbox as o
            set status = 'sent', sent_at = now(), updated_at = now(), last_error = null,
                external_ref = coalesce(k.external_ref, o.external_ref),
                external_number = coalesce(k.external_number, o.external_number)
            from _ack_ok as k where o.outbox_id = k.outbox_id
        """)
        con.execute("""
            create or replace temp table _ack_state as
            select o.target, o.object, o.record_key, o.payload, o.payload_hash,
                   coalesce(o.external_ref, s.external_ref) as external_ref,
                   coalesce(o.external_number, s.external_number) as external_number,
                   o.outbox_id, now() as pushed_at
            from activation.outbox as o
            join _ack_ok as k on o.outbox_id = k.outbox_id
            left join activation.pushed_state as s
                on s.target = o.target and s.object = o.object and s.record_key = o.record_key
        """)
        con.execute("""
            delete from activation.pushed_state as s
            using _ack_state as n
            where s.target = n.target and s.object = n.object and s.record_key = n.record_key
        """)
        con.execute("insert into activation.pushed_state select * from _ack_state")
        con.execute("drop table _ack_state")
        con.unregister("_ack_ok")
    dead = 0
    if bad.height:
        con.register("_ack_bad", bad)
        con.execute("""
            update activation.outbox as o
            set status = case when o.attempts >= ? then 'dead' else 'failed' end,
                last_error = left(k.error, 2000), updated_at = now()
            from _ack_bad as k where o.outbox_id = k.outbox_id
        """, [max_attempts])
        dead = con.execute("""
            select count(*) from activation.outbox as o join _ack_bad as k on o.outbox_id = k.outbox_id
            where o.status = 'dead'
        """).fetchall()[0][0]
        con.unregister("_ack_bad")
    con.execute("commit")
    return ok.height, bad.height - dead, int(dead)


def release(con: duckdb.DuckDBPyConnection, ids: Sequence[str], error: str) -> None:
    """Put rows back to pending (a transient fault outlasted the back-off); the attempt is not counted."""
    if not ids:
        return
    con.register("_ids", _ids_frame(ids))
    con.execute("begin")
    con.execute("""
        update activation.outbox as o
        set status = 'pending', attempts = greatest(o.attempts - 1, 0), last_error = left(?, 2000),
            updated_at = now()
        from _ids as f where o.outbox_id = f.outbox_id and o.status = 'sending'
    """, [error])
    con.execute("commit")
    con.unregister("_ids")


def pushed_state(con: duckdb.DuckDBPyConnection, target: str, obj: str) -> pl.DataFrame:
    return frame(
        con,
        "select record_key, payload, payload_hash, external_ref, external_number, pushed_at "
        "from activation.pushed_state where target = ? and object = ?",
        [target, obj],
    )


def status_summary(con: duckdb.DuckDBPyConnection) -> dict:
    """Outbox counts per target/object/status and the dead rows (for ``python -m activate status``)."""
    if not table_exists(con, "activation", "outbox"):  # read-only before the first plan: nothing yet
        return {"counts": [], "dead": [], "recent_sends": []}
    counts = con.execute("""
        select target, object, status, count(*) as n from activation.outbox
        group by all order by all
    """).fetchall()
    dead = con.execute("""
        select outbox_id, target, object, record_key, attempts, last_error, run_id, updated_at
        from activation.outbox where status = 'dead' order by updated_at, record_key
    """).fetchall()
    runs = con.execute("""
        select send_run_id, target, started_at, kill_switch, api_calls, rows_sent, rows_failed, rows_dead,
               interrupted, json_extract_string(detail, '$.interrupted_by')
        from activation.send_runs order by started_at desc limit 10
    """).fetchall()
    open_by_target = {t: 0 for t in ("salesforce", "servicenow")}
    for t, _o, s, n in counts:
        if s in OPEN:
            open_by_target[t] = open_by_target.get(t, 0) + int(n)
    return {
        # rows still to deliver (pending, sending or failed): the next send resumes them
        "open_rows": open_by_target,
        "counts": [{"target": t, "object": o, "status": s, "rows": n} for t, o, s, n in counts],
        "dead": [
            {"outbox_id": i, "target": t, "object": o, "record_key": k, "attempts": a, "last_error": e,
             "run_id": r, "updated_at": str(u)}
            for i, t, o, k, a, e, r, u in dead
        ],
        "recent_sends": [
            {"send_run_id": i, "target": t, "started_at": str(s), "kill_switch": ks, "api_calls": c,
             "rows_sent": ok, "rows_failed": f, "rows_dead": d, "interrupted": x,
             **({"interrupted_by": why} if why else {})}
            for i, t, s, ks, c, ok, f, d, x, why in runs
        ],
    }


def record_send_run(con: duckdb.DuckDBPyConnection, report) -> None:
    con.execute(
        "insert into activation.send_runs values (?, ?, ?, now(), ?, ?, ?, ?, ?, ?, ?)",
        [report.send_run_id, report.target, report.started_at, report.kill_switch, report.api_calls,
         report.sent, report.failed, report.dead, report.interrupted, json.dumps(report.detail, default=str)],
    )
