"""The import graph: data flows one way, and nothing imports what imports it back."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

# Translation: pure, never mitmproxy, never the store or what comes after it.
PURE = (
    "xapitap.accounting",
    "xapitap.capture",
    "xapitap.decoding",
    "xapitap.events",
    "xapitap.ids",
    "xapitap.mappings",
    "xapitap.matching",
    "xapitap.pipeline",
    "xapitap.platforms",
    "xapitap.player",
    "xapitap.privacy",
    "xapitap.pseudonym",
    "xapitap.session",
    "xapitap.session_codec",
    "xapitap.validation",
    "xapitap.xapi",
)
AFTER_TRANSLATION = ("xapitap.store", "xapitap.sinks", "xapitap.translator", "xapitap.addon")


def modules() -> dict[str, set[str]]:
    """Each module of the package and the xapitap (and mitmproxy) modules it imports."""
    graph: dict[str, set[str]] = {}
    for path in (SRC / "xapitap").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
                imported |= {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
        graph[name] = {m for m in imported if m.split(".")[0] in ("xapitap", "mitmproxy")}
    return graph


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_translation_imports_neither_mitmproxy_nor_what_comes_after_it() -> None:
    graph = modules()
    for name, imported in graph.items():
        if within(name, PURE):
            bad = {m for m in imported if m.startswith("mitmproxy") or within(m, AFTER_TRANSLATION)}
            assert not bad, f"{name} imports {bad}"


def test_the_store_imports_only_what_is_below_it() -> None:
    for name, imported in modules().items():
        if within(name, ("xapitap.store",)):
            above = (
                "xapitap.sinks",
                "xapitap.journal",
                "xapitap.translator",
                "xapitap.dashboard",
                "xapitap.addon",
                "xapitap.cli",
            )
            bad = {m for m in imported if within(m, above) or m.startswith("mitmproxy")}
            assert not bad, f"{name} imports {bad}"


def test_the_journal_holds_requests_and_knows_nothing_of_translation() -> None:
    """It sits between capture and translation: what the hook matched, as bytes."""
    for name, imported in modules().items():
        if within(name, ("xapitap.journal",)):
            later = ("xapitap.pipeline", "xapitap.session", "xapitap.xapi", *AFTER_TRANSLATION)
            bad = {m for m in imported if within(m, later) or m.startswith("mitmproxy")}
            assert not bad, f"{name} imports {bad}"


def test_the_translator_runs_without_mitmproxy_or_the_sinks() -> None:
    """It is a process of its own: the proxy's side of it (supervisor) included."""
    for name, imported in modules().items():
        if within(name, ("xapitap.translator",)):
            above = ("xapitap.sinks", "xapitap.addon", "xapitap.cli")
            bad = {m for m in imported if within(m, above) or m.startswith("mitmproxy")}
            assert not bad, f"{name} imports {bad}"


def test_the_dashboard_reads_the_store_without_mitmproxy_or_translation() -> None:
    """A sink of the store's: `xapitap dashboard` serves a store with no proxy, and the
    session model is not its to run (it reads what the statements say)."""
    for name, imported in modules().items():
        if within(name, ("xapitap.dashboard",)):
            bad = {
                m
                for m in imported
                if m.startswith("mitmproxy")
                or within(
                    m, ("xapitap.addon", "xapitap.cli", "xapitap.sinks", "xapitap.translator")
                )
                or within(m, ("xapitap.pipeline", "xapitap.session", "xapitap.player"))
            }
            assert not bad, f"{name} imports {bad}"


def test_no_import_cycles() -> None:
    graph = modules()
    known = set(graph)
    edges = {n: {m for m in imported if m in known and m != n} for n, imported in graph.items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            here = todo.pop()
            if here == goal:
                return True
            if here not in seen:
                seen.add(here)
                todo += edges.get(here, set())
        return False

    # A package's __init__ may gather its own modules (they never import it back).
    cycles = [
        (a, b)
        for a in edges
        for b in edges[a]
        if reaches(b, a) and not (b.startswith(a + ".") or a.startswith(b + "."))
    ]
    assert not cycles, cycles
