"""Regenerate ``ingest/fix/dictionaries/fix44.json`` and ``fix42.json`` from the QuickFIX data dictionaries.

Provenance: the QuickFIX C++ engine's ``spec/FIX44.xml`` and ``spec/FIX42.xml`` as shipped in the
``quickfix`` source distribution on PyPI (1.16.0 when these files were generated). QuickFIX is under the
QuickFIX Software License 1.0 (BSD-style); its notice is kept in ``dictionaries/QUICKFIX_LICENSE``.
"This product includes software developed by quickfixengine.org (http://www.quickfixengine.org/)."

    pip download --no-deps --no-binary :all: quickfix -d /tmp/qf      # do not install it
    tar xzf /tmp/qf/quickfix-*.tar.gz -C /tmp/qf --wildcards '*/spec/FIX4[24].xml'
    python -m ingest.fix.build_dictionary /tmp/qf/quickfix-*/spec

The derived JSON is compact: the header/trailer fields and the ExecutionReport (35=8) fields that a drop
copy carries (``TAGS_USED``), each with number, name, type, dictionary ``required`` flag and enum values.
Two things are ours, not QuickFIX's, and are marked as such in the JSON:

- ``roe_required``: tags our rules of engagement with the executing brokers require on every drop-copy
  ExecutionReport (sandbox/README.md), beyond what the FIX dictionary requires; recon cannot match without
  them.
- ``extension_enums``: values agreed with the brokers that a dictionary lacks: ``167=FXFWD`` (FX forward,
  from the later FIX 4.4 extension packs / FIX 5.0) is not in QuickFIX's FIX44/FIX42 SecurityType lists.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "dictionaries"

# Every tag a drop-copy ExecutionReport carries (sandbox/README.md), in message order.
TAGS_USED = [8, 9, 35, 49, 56, 34, 52, 37, 11, 17, 20, 150, 39, 1, 55, 167, 54,
             38, 32, 31, 151, 14, 6, 15, 60, 75, 64, 12, 13, 10]
ROE_REQUIRED = [1, 11, 15, 31, 32, 38, 55, 60, 75]
EXTENSION_ENUMS = {167: {"FXFWD": "FX_FORWARD"}}
VERSIONS = {"FIX44.xml": "fix44.json", "FIX42.xml": "fix42.json"}


def _required_in(node: ET.Element, components: dict[str, ET.Element], out: set[str]) -> None:
    """Names of fields required directly or through required components (not inside groups)."""
    for child in node:
        if child.get("required") != "Y":
            continue
        if child.tag == "field":
            out.add(child.get("name"))
        elif child.tag == "component":
            _required_in(components[child.get("name")], components, out)


def build(xml_path: Path) -> dict:
    root = ET.parse(xml_path).getroot()
    begin_string = f"{root.get('type')}.{root.get('major')}.{root.get('minor')}"
    fields = {int(f.get("number")): f for f in root.find("fields")}
    components_node = root.find("components")
    components = {c.get("name"): c for c in components_node} if components_node is not None else {}
    execution_report = next(m for m in root.find("messages") if m.get("msgtype") == "8")
    required: set[str] = set()
    for part in (root.find("header"), execution_report, root.find("trailer")):
        _required_in(part, components, required)

    tags = []
    for number in TAGS_USED:
        field = fields.get(number)
        if field is None:  # e.g. ExecTransType (20) does not exist in FIX 4.4
            continue
        enums = {v.get("enum"): v.get("description") for v in field.findall("value")}
        entry = {
            "tag": number,
            "name": field.get("name"),
            "type": field.get("type"),
            "required": field.get("name") in required,
            "roe_required": number in ROE_REQUIRED,
        }
        if enums:
            entry["enums"] = enums
        if number in EXTENSION_ENUMS:
            entry["extension_enums"] = EXTENSION_ENUMS[number]
        tags.append(entry)
    return {
        "begin_string": begin_string,
        "msg_type": "8",
        "message": "ExecutionReport",
        "source": f"QuickFIX {xml_path.name} (quickfixengine.org, QuickFIX Software License 1.0)",
        "tags": tags,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    spec_dir = Path(argv[0])
    for xml_name, json_name in VERSIONS.items():
        dictionary = build(spec_dir / xml_name)
        (OUT_DIR / json_name).write_text(json.dumps(dictionary, indent=1, sort_keys=False) + "\n")
        print(f"wrote {OUT_DIR / json_name}: {len(dictionary['tags'])} tags")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
