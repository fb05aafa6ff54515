"""Per-object extraction state: the SystemModstamp watermark, the overlap window and its keys.

State lives in ``landing/_state/salesforce_watermarks.json`` and is replaced atomically (temp file
+ ``os.replace``), only after an object's data file and the run's manifest are on disk. A crash
before that leaves the previous watermark, so the rerun extracts the same window again.

Why an overlap: a Salesforce transaction stamps ``SystemModstamp`` when it starts but becomes
visible when it commits, so a record can appear with a stamp slightly *older* than one already
extracted. Each incremental run therefore re-reads ``SystemModstamp > watermark - overlap``. The
(Id, SystemModstamp) keys already landed inside that window are kept beside the watermark (a small
Parquet file per object), and re-read rows with a known key are dropped, so a run with no changes
lands zero rows.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.salesforce.schema import TIMESTAMP

STATE_VERSION = 1
KEY_SCHEMA = pa.schema([pa.field("Id", pa.string()), pa.field("SystemModstamp", TIMESTAMP)])


def state_dir(landing_dir: Path) -> Path:
    return Path(landing_dir) / "_state"


def watermark_file(landing_dir: Path) -> Path:
    return state_dir(landing_dir) / "salesforce_watermarks.json"


def boundary_dir(landing_dir: Path) -> Path:
    return state_dir(landing_dir) / "salesforce_boundary"


def format_soql_datetime(moment: datetime) -> str:
    """A SOQL datetime literal (unquoted, UTC, whole seconds: the documented literal form)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def window_start(watermark: datetime, overlap: timedelta) -> datetime:
    """The lower bound (exclusive) of the next incremental read, floored to whole seconds.

    Flooring only widens the window; the boundary keys cover everything above this bound, so the
    extra second does not re-land rows.
    """
    return (watermark - overlap).replace(microsecond=0)


@dataclass
class ObjectState:
    """What the last successful run of one object left behind."""

    watermark: datetime | None = None
    fields: list[str] | None = None
    boundary_file: str | None = None  # relative to the state folder
    last_run_id: str | None = None

    def to_json(self) -> dict:
        return {
            "watermark": format_iso(self.watermark),
            "fields": self.fields,
            "boundary_file": self.boundary_file,
            "last_run_id": self.last_run_id,
        }

    @classmethod
    def from_json(cls, data: dict) -> ObjectState:
        return cls(
            watermark=parse_iso(data.get("watermark")),
            fields=data.get("fields"),
            boundary_file=data.get("boundary_file"),
            last_run_id=data.get("last_run_id"),
        )


@dataclass
class WatermarkStore:
    """Load, inspect and atomically replace the watermark file of one landing folder."""

    landing_dir: Path
    objects: dict[str, ObjectState] = field(default_factory=dict)

    @classmethod
    def load(cls, landing_dir: Path) -> WatermarkStore:
        path = watermark_file(landing_dir)
        if not path.exists():
            return cls(Path(landing_dir))
        data = json.loads(path.read_text())
        return cls(
            Path(landing_dir),
            {name: ObjectState.from_json(obj) for name, obj in data.get("objects", {}).items()},
        )

    def get(self, name: str) -> ObjectState:
        return self.objects.get(name) or ObjectState()

    def boundary_keys(self, name: str) -> pa.Table:
        state = self.objects.get(name)
        if state is None or not state.boundary_file:
            return KEY_SCHEMA.empty_table()
        path = state_dir(self.landing_dir) / state.boundary_file
        if not path.exists():
            return KEY_SCHEMA.empty_table()
        return pq.read_table(path).select(["Id", "SystemModstamp"]).cast(KEY_SCHEMA)

    def write_boundary(self, name: str, run_id: str, keys: pa.Table) -> str:
        """Write the keys of the new overlap window; returns the path relative to the state folder."""
        folder = boundary_dir(self.landing_dir)
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{name}__{run_id}.parquet"
        write_parquet_atomic(keys.cast(KEY_SCHEMA), final)
        return str(final.relative_to(state_dir(self.landing_dir)))

    def commit(self, updates: dict[str, ObjectState]) -> None:
        """Replace the watermark file with these objects' new state (others keep theirs)."""
        if not updates:
            return
        fresh = WatermarkStore.load(self.landing_dir)  # never overwrite another run's progress blindly
        stale = {
            state.boundary_file
            for name, state in fresh.objects.items()
            if name in updates and state.boundary_file and state.boundary_file != updates[name].boundary_file
        }
        fresh.objects.update(updates)
        payload = {
            "version": STATE_VERSION,
            "updated_at": format_iso(datetime.now(UTC)),
            "objects": {name: fresh.objects[name].to_json() for name in sorted(fresh.objects)},
        }
        path = watermark_file(self.landing_dir)
        write_text_atomic(json.dumps(payload, indent=2, sort_keys=True) + "\n", path)
        self.objects = fresh.objects
        for relative in stale:  # only after the new state points elsewhere
            (state_dir(self.landing_dir) / relative).unlink(missing_ok=True)


def merge_boundary(previous: pa.Table, landed: pa.Table, lower_bound: datetime | None) -> pa.Table:
    """Keys with SystemModstamp above the next window's lower bound, from before and from this run."""
    keys = pa.concat_tables([previous.cast(KEY_SCHEMA), landed.cast(KEY_SCHEMA)])
    if lower_bound is None or keys.num_rows == 0:
        return keys.slice(0, 0) if lower_bound is None else keys
    bound = pa.scalar(lower_bound, TIMESTAMP)
    keys = keys.filter(pc.greater(keys["SystemModstamp"], bound))
    return keys.group_by(["Id", "SystemModstamp"]).aggregate([]).cast(KEY_SCHEMA)


def key_strings(ids: pa.ChunkedArray | pa.Array, stamps: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One comparable string per (Id, SystemModstamp), for membership tests."""
    millis = pc.cast(pc.cast(stamps, TIMESTAMP), pa.int64()).cast(pa.string())
    joined = pc.binary_join_element_wise(ids, millis, "|")
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def write_text_atomic(text: str, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_parquet_atomic(table: pa.Table, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
