"""Write validation as a real org applies it: required fields, text lengths, id shapes and references.

Every write path (single create/update, upsert by external id, sObject Collections, Bulk API 2.0)
asks ``WriteRules.check`` about each record, so write-back code that would fail in production
fails here with the same error code, message and field list:

* ``REQUIRED_FIELD_MISSING`` "Required fields are missing: [Name]" — a field the describe marks
  ``nillable: false``, createable and not defaulted, absent on create or set to null on update;
* ``STRING_TOO_LONG`` "Name: data value too large: ... (max length=255)";
* ``MALFORMED_ID`` "Owner ID: id value of incorrect type: garbage" — not a 15/18-character id;
* ``INVALID_CROSS_REFERENCE_KEY`` "invalid cross reference id" — a well-formed id that is no live
  record of the referenced object.

15-character ids are accepted wherever an id goes and stored in their 18-character form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sandbox.salesforce.store import STANDARD_FIELDS, FieldSpec, SalesforceStore, UnknownObject, case_safe_id

ID_SHAPE = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
TEXT_TYPES = {"string", "textarea", "email", "phone", "picklist", "url"}
DEFAULT_LENGTH = {"textarea": 32768, "email": 80, "phone": 40}


class RecordError(Exception):
    def __init__(self, code: str, message: str, fields: list[str]):
        super().__init__(message)
        self.code, self.message, self.fields = code, message, fields


def max_length(spec: FieldSpec) -> int | None:
    if spec.type not in TEXT_TYPES:
        return None
    return spec.length or DEFAULT_LENGTH.get(spec.type, 255)


def is_required(spec: FieldSpec) -> bool:
    """nillable false, createable (not a system field) and not defaulted on create (booleans are)."""
    return not spec.nillable and spec.name not in STANDARD_FIELDS and spec.type != "boolean"


def field_label(spec: FieldSpec) -> str:
    if spec.label:
        return spec.label
    base = spec.name.removesuffix("__c")
    return (base[:-2] + " ID") if spec.type == "reference" and base.endswith("Id") else base.replace("_", " ")


def normalize_id(value):
    """A 15-character id in its 18-character case-safe form; anything else unchanged."""
    if isinstance(value, str) and len(value) == 15 and ID_SHAPE.match(value):
        return case_safe_id(value)
    return value


class WriteRules:
    def __init__(self, store: SalesforceStore):
        self.store = store

    def normalize(self, obj: str, values: dict) -> dict:
        """15-character ids in Id and reference fields become 18-character ones (what the org stores)."""
        specs = self.store.fields(obj)
        return {k: normalize_id(v) if specs[k].type in {"id", "reference"} else v for k, v in values.items()}

    def live_references(self, obj: str, records: Iterable[dict]) -> set[str]:
        """The ids among the records' reference values that are live records of their target objects."""
        specs = self.store.fields(obj)
        wanted: dict[str, set[str]] = {}
        for record in records:
            for name, value in record.items():
                spec = specs.get(name)
                if spec is not None and spec.type == "reference" and isinstance(value, str) and ID_SHAPE.match(value):
                    wanted.setdefault(spec.reference_to or "", set()).add(normalize_id(value))
        live: set[str] = set()
        for target, ids in wanted.items():
            try:
                found = self.store.ids_by_values(target, "Id", sorted(ids))
            except (UnknownObject, KeyError):
                live |= ids  # the referenced object is not modelled in this org: nothing to check against
                continue
            live |= {i for found_ids in found.values() for i in found_ids}
        return live

    def check(self, obj: str, values: dict, creating: bool, live: set[str] | None = None) -> None:
        """Raise RecordError for the first rule the record breaks (the order a real org reports them)."""
        specs = self.store.fields(obj)
        missing = [name for name, spec in specs.items() if is_required(spec) and (
            (creating and values.get(name) in (None, "")) or (not creating and name in values
                                                               and values[name] in (None, "")))]
        if missing:
            raise RecordError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                              missing)
        for name, value in values.items():
            spec = specs.get(name)
            if spec is None or value is None:
                continue
            limit = max_length(spec)
            if limit is not None and len(str(value)) > limit:
                raise RecordError("STRING_TOO_LONG",
                                  f"{field_label(spec)}: data value too large: {str(value)[:100]} (max length={limit})",
                                  [name])
            if spec.type == "reference" and value != "":
                if not isinstance(value, str) or not ID_SHAPE.match(value):
                    raise RecordError("MALFORMED_ID", f"{field_label(spec)}: id value of incorrect type: {value}",
                                      [name])
                if live is None:
                    live = self.live_references(obj, [values])
                if normalize_id(value) not in live:
                    raise RecordError("INVALID_CROSS_REFERENCE_KEY",
                                      f"{field_label(spec)}: invalid cross reference id", [name])
