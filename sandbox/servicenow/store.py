"""The sandbox ServiceNow instance's tables in SQLite: ``incident`` (read/write) and
``sys_user_group`` (read-only assignment groups). Every value is a string, as on the wire."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from pathlib import Path

INCIDENT_COLUMNS = (
    "sys_id", "number", "short_description", "description", "correlation_id", "correlation_display",
    "state", "incident_state", "impact", "urgency", "priority", "severity", "category", "subcategory",
    "contact_type", "assignment_group", "assigned_to", "caller_id", "opened_by", "opened_at",
    "close_code", "close_notes", "resolved_at", "resolved_by", "closed_at", "closed_by", "active",
    "reopen_count", "reassignment_count", "hold_reason", "work_notes", "comments", "company", "location",
    "cmdb_ci", "problem_id", "parent_incident", "knowledge", "made_sla", "escalation", "approval",
    "notify", "due_date", "sys_class_name", "sys_domain", "sys_created_on", "sys_created_by",
    "sys_updated_on", "sys_updated_by", "sys_mod_count", "sys_tags",
)
GROUP_COLUMNS = (
    "sys_id", "name", "description", "active", "email", "manager", "type", "parent",
    "sys_created_on", "sys_created_by", "sys_updated_on", "sys_updated_by", "sys_mod_count",
)
TABLES = {"incident": INCIDENT_COLUMNS, "sys_user_group": GROUP_COLUMNS}
ASSIGNMENT_GROUPS = (
    ("Trade Support - Equities", "Breaks on equity and ETF trades"),
    ("Trade Support - Fixed Income", "Breaks on bond trades"),
    ("Trade Support - FX", "Breaks on FX forwards"),
    ("Trade Support - Derivatives", "Breaks on listed options"),
    ("Middle Office", "Settlement, accounts and everything else"),
)


def group_sys_id(name: str) -> str:
    """Stable sys_ids for the seeded groups (the same on every installation)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"northstar-sandbox/sys_user_group/{name}").hex


class ServiceNowStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self.write_lock = threading.RLock()
        conn = self.connection()
        with self.write_lock:
            conn.execute("begin immediate")
            for table, columns in TABLES.items():
                cols = ", ".join(f'"{c}" text' + (" primary key" if c == "sys_id" else "") for c in columns)
                conn.execute(f'create table if not exists "{table}" ({cols})')
                existing = {row[1] for row in conn.execute(f'pragma table_info("{table}")')}
                for column in columns:
                    if column not in existing:
                        conn.execute(f'alter table "{table}" add column "{column}" text')
            conn.execute("create index if not exists ix_incident_correlation on incident (correlation_id)")
            conn.execute("create table if not exists _counters (name text primary key, value integer not null)")
            conn.execute("insert or ignore into _counters values ('incident', 10000)")
            for name, description in ASSIGNMENT_GROUPS:
                conn.execute(
                    "insert or ignore into sys_user_group (sys_id, name, description, active, email, manager, "
                    "type, parent, sys_created_on, sys_created_by, sys_updated_on, sys_updated_by, sys_mod_count) "
                    "values (?, ?, ?, 'true', '', '', '', '', '2024-01-01 00:00:00', 'system', "
                    "'2024-01-01 00:00:00', 'system', '0')",
                    (group_sys_id(name), name, description),
                )
            conn.execute("commit")

    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("pragma journal_mode=wal")
            # As the Salesforce store: a commit survives the process, not a power cut. Without it every
            # incident write waits for an fsync (~4 ms here), which is most of a Batch API call's time.
            conn.execute("pragma synchronous=normal")
            conn.execute("pragma busy_timeout=60000")
            self._local.conn = conn
        return conn

    def next_number(self) -> str:
        conn = self.connection()
        value = conn.execute(
            "update _counters set value = value + 1 where name = 'incident' returning value"
        ).fetchone()[0]
        return f"INC{value:07d}"

    def rows(self, table: str, where: str, params: list, order: str, limit: int | None, offset: int) -> list[dict]:
        columns = TABLES[table]
        sql = f'select {", ".join(chr(34) + c + chr(34) for c in columns)} from "{table}"'  # noqa: S608 - fixed names
        if where:
            sql += f" where {where}"
        sql += f" order by {order}" if order else " order by rowid"
        sql += " limit ? offset ?"
        cursor = self.connection().execute(sql, [*params, -1 if limit is None else limit, offset])
        return [{c: (v if v is not None else "") for c, v in zip(columns, row, strict=True)} for row in cursor]

    def count(self, table: str, where: str, params: list) -> int:
        sql = f'select count(*) from "{table}"' + (f" where {where}" if where else "")  # noqa: S608 - fixed names
        return self.connection().execute(sql, params).fetchone()[0]

    def get(self, table: str, sys_id: str) -> dict | None:
        found = self.rows(table, '"sys_id" = ?', [sys_id], "", 1, 0)
        return found[0] if found else None

    def insert(self, table: str, record: dict) -> None:
        columns = TABLES[table]
        sql = (
            f'insert into "{table}" ({", ".join(chr(34) + c + chr(34) for c in columns)}) '  # noqa: S608 - fixed names
            f'values ({", ".join("?" for _ in columns)})'
        )
        self.connection().execute(sql, [record.get(c, "") for c in columns])

    def update(self, table: str, sys_id: str, changes: dict) -> None:
        if not changes:
            return
        assignments = ", ".join(f'"{c}" = ?' for c in changes)
        sql = f'update "{table}" set {assignments} where "sys_id" = ?'  # noqa: S608 - names from TABLES
        self.connection().execute(sql, [*changes.values(), sys_id])

    def delete(self, table: str, sys_id: str) -> int:
        return self.connection().execute(f'delete from "{table}" where "sys_id" = ?', (sys_id,)).rowcount  # noqa: S608
