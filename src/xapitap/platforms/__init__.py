"""Platform adapters, one module each, found by looking for a module-level `ADAPTER`."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from xapitap.matching import EndpointRule
from xapitap.platforms.base import Adapter


@cache
def all_adapters() -> tuple[Adapter, ...]:
    found: list[Adapter] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        adapter = getattr(module, "ADAPTER", None)
        if isinstance(adapter, Adapter):
            found.append(adapter)
    return tuple(found)


def all_rules() -> list[EndpointRule]:
    return [rule for adapter in all_adapters() for rule in adapter.rules]
