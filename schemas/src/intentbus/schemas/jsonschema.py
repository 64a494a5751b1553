"""Generate the committed JSON Schema files from the Structs.

Run ``python -m intentbus.schemas.jsonschema [DIR]`` to rewrite them; a test fails when
the committed files differ from what the Structs generate.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import msgspec

from intentbus.schemas.codec import MESSAGE_TYPES

WIRE_MESSAGES = (
    "ExecutionIntent",
    "ExecutionResult",
    "OrderUpdate",
    "Fill",
    "DeadLetter",
    "Mark",
    "Position",
    "HaltSwitch",
    "Heartbeat",
    "Candle",
    "Drift",
)


def render_schemas() -> dict[str, str]:
    """Return file name -> JSON Schema text for every wire message."""
    rendered: dict[str, str] = {}
    for name in WIRE_MESSAGES:
        schema = msgspec.json.schema(MESSAGE_TYPES[name])
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = name
        rendered[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return rendered


def default_dir() -> Path:
    """Return the committed schema folder: ``schemas/jsonschema`` of the workspace."""
    return Path(__file__).resolve().parents[3] / "jsonschema"


def write_schemas(target: Path) -> list[Path]:
    """Write every schema file into ``target`` and return their paths."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = target / name
        path.write_text(text)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Write the schemas into the folder given, or the committed one."""
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else default_dir()
    for path in write_schemas(target):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
