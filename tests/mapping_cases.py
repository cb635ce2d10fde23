"""Golden cases of mapping files: `fixtures/mappings/<site>/<name>.input.json`, as the
built-in platforms' golden cases, plus `mapping` (the file, from the repository's root)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import golden
from xapitap.mappings import MappingFile
from xapitap.mappings import platforms_of
from xapitap.platforms.base import Platform

ROOT = Path(__file__).resolve().parents[1]
CASES = golden.FIXTURES / "mappings"


def cases() -> list[golden.Case]:
    found = []
    for path in sorted(CASES.glob("*/*.input.json")):
        name = f"{path.parent.name}/{path.name.removesuffix('.input.json')}"
        found.append(golden.Case(name, path, json.loads(path.read_text())))
    return found


def mapping_path(case: golden.Case) -> Path:
    return ROOT / str(case.spec["mapping"])


def platforms(case: golden.Case) -> list[Platform]:
    path = mapping_path(case)
    return list(platforms_of([MappingFile(str(path), path.read_text())]))


def run(case: golden.Case) -> list[dict[str, Any]]:
    return golden.run(case, platforms=platforms(case))
