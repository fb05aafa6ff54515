"""Regenerate ``connectors/fix/dictionaries/fix44.json``, ``fix42.json`` and ``fix50sp2.json`` from the QuickFIX
data dictionaries.

Provenance: the QuickFIX C++ engine's ``spec/FIX44.xml``, ``spec/FIX42.xml``, ``spec/FIX50SP2.xml`` and
``spec/FIXT11.xml`` (the FIXT.1.1 session header that carries FIX 5.0 SP2) as shipped in the
``quickfix`` source distribution on PyPI (1.16.0 when these files were generated). QuickFIX is under the
QuickFIX Software License 1.0 (BSD-style); its notice is kept in ``dictionaries/QUICKFIX_LICENSE``.
"This product includes software developed by quickfixengine.org (http://www.quickfixengine.org/)."

    pip download --no-deps --no-binary :all: quickfix -d /tmp/qf      # do not install it
    tar xzf /tmp/qf/quickfix-*.tar.gz -C /tmp/qf --wildcards '*/spec/FIX*.xml'
    python -m connectors.fix.build_dictionary /tmp/qf/quickfix-*/spec

The derived JSON is compact: the header/trailer fields and the ExecutionReport (35=8) fields that a drop
copy carries (``TAGS_USED``), each with number, name, type, dictionary ``required`` flag and enum values.
``required`` is the standard's rule only; what a broker's rules of engagement add (e.g. Account, TradeDate)
lives in that broker's dialect (``ingest/dialects/fix.yaml``), not here. One thing is ours, not QuickFIX's,
and is marked as such in the JSON:

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
TAGS_USED = [8, 9, 35, 1128, 49, 56, 34, 52, 37, 11, 17, 20, 150, 39, 1, 55, 167, 54,
             38, 32, 31, 151, 14, 6, 15, 60, 75, 64, 12, 13, 58, 10]
EXTENSION_ENUMS = {167: {"FXFWD": "FX_FORWARD"}}
# spec file -> (output, the session spec whose header/trailer it uses: FIX 5.0 travels over FIXT.1.1)
VERSIONS = {"FIX44.xml": ("fix44.json", None), "FIX42.xml": ("fix42.json", None),
            "FIX50SP2.xml": ("fix50sp2.json", "FIXT11.xml")}


def _required_in(node: ET.Element, components: dict[str, ET.Element], out: set[str]) -> None:
    """Names of fields required directly or through required components (not inside groups)."""
    for child in node:
        if child.get("required") != "Y":
            continue
        if child.tag == "field":
            out.add(child.get("name"))
        elif child.tag == "component":
            _required_in(components[child.get("name")], components, out)


def build(xml_path: Path, session_path: Path | None = None) -> dict:
    root = ET.parse(xml_path).getroot()
    session = ET.parse(session_path).getroot() if session_path else root
    begin_string = f"{session.get('type')}.{session.get('major')}.{session.get('minor')}"
    fields = {int(f.get("number")): f for f in root.find("fields")}
    if session is not root:  # header fields (ApplVerID, ...) are defined by the session spec
        fields.update({int(f.get("number")): f for f in session.find("fields")})
    components_node = root.find("components")
    components = {c.get("name"): c for c in components_node} if components_node is not None else {}
    execution_report = next(m for m in root.find("messages") if m.get("msgtype") == "8")
    required: set[str] = set()
    for part in (session.find("header"), execution_report, session.find("trailer")):
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
        }
        if enums:
            entry["enums"] = enums
        if number in EXTENSION_ENUMS:
            entry["extension_enums"] = EXTENSION_ENUMS[number]
        tags.append(entry)
    spec_names = xml_path.name + (f" + {session_path.name}" if session_path else "")
    out = {
        "begin_string": begin_string,
        "msg_type": "8",
        "message": "ExecutionReport",
        "source": f"QuickFIX {spec_names} (quickfixengine.org, QuickFIX Software License 1.0)",
        "tags": tags,
    }
    if session is not root:  # the application version FIXT.1.1 messages carry in ApplVerID(1128)
        by_name = {v.get("description"): v.get("enum") for v in fields[1128].findall("value")}
        out["appl_ver_id"] = by_name[f"FIX{root.get('major')}{root.get('minor')}_SP{root.get('servicepack')}"]
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    spec_dir = Path(argv[0])
    for xml_name, (json_name, session_name) in VERSIONS.items():
        dictionary = build(spec_dir / xml_name, spec_dir / session_name if session_name else None)
        (OUT_DIR / json_name).write_text(json.dumps(dictionary, indent=1, sort_keys=False) + "\n")
        print(f"wrote {OUT_DIR / json_name}: {len(dictionary['tags'])} tags")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
