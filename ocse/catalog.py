"""The metric definitions, taken from the dbt docs (the project's one written source).

dbt renders every model's and column's description (docs blocks included) into
`target/manifest.json` when it parses. The publish step copies them into the serving
snapshot as `meta.definitions`, so the methodology page, the research data dictionary and
the assessment report quote exactly what the marts' YAML says, for the release that built
the numbers on screen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

PUBLISHED_SCHEMA = "marts"


@dataclass(frozen=True)
class Definition:
    table_name: str
    column_name: str | None  # None: the table itself
    data_type: str | None
    description: str
    ordinal: int  # column order as documented; 0 for the table row


def mart_definitions(manifest_path: Path) -> list[Definition]:
    """Every published mart and its documented columns, in the YAML's order."""
    manifest = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    definitions: list[Definition] = []
    for node in manifest["nodes"].values():
        if node.get("resource_type") != "model" or node.get("schema") != PUBLISHED_SCHEMA:
            continue
        name = node["name"]
        definitions.append(Definition(name, None, None, node.get("description") or "", 0))
        for ordinal, column in enumerate(node.get("columns", {}).values(), start=1):
            definitions.append(
                Definition(
                    name,
                    column["name"],
                    column.get("data_type"),
                    column.get("description") or "",
                    ordinal,
                )
            )
    definitions.sort(key=lambda d: (d.table_name, d.ordinal))
    return definitions


def table_definitions(definitions: list[Definition], table_name: str) -> list[Definition]:
    return [d for d in definitions if d.table_name == table_name]
