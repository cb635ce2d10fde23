"""A checked mapping as a `Platform`: an endpoint rule and an extractor per endpoint, matched
and read exactly as the built-in platforms' are."""

from __future__ import annotations

from collections.abc import Callable

from xapitap.capture import Capture
from xapitap.events import Extraction
from xapitap.mappings.extract import extract
from xapitap.mappings.model import Endpoint
from xapitap.mappings.model import Mapping
from xapitap.matching import BodyCheck
from xapitap.matching import EndpointRule
from xapitap.matching import HeaderLookup
from xapitap.matching import RuleMatch
from xapitap.matching import host_glob
from xapitap.platforms.base import Extract
from xapitap.platforms.base import Platform


def platform_of(mapping: Mapping) -> Platform:
    extractors = {rule_of(mapping, e): _reader(mapping, e) for e in mapping.endpoints}
    return Platform(mapping.site.name, extractors)


def rule_of(mapping: Mapping, endpoint: Endpoint) -> EndpointRule:
    hosts = "|".join(f"(?:{host_glob(h)})" for h in endpoint.hosts) or None
    return EndpointRule(
        name=f"{mapping.site.name}.{endpoint.name}",
        platform=mapping.site.name,
        path=endpoint.path_regex,
        hosts=hosts,
        methods=endpoint.methods,
        body_check=_body_has(endpoint.body_has) if endpoint.body_has else None,
        # Events in the query string: the body is not read (a GET beacon has none).
        reads_body=not endpoint.from_query,
    )


def _reader(mapping: Mapping, endpoint: Endpoint) -> Extract:
    def read(match: RuleMatch, capture: Capture, doc: object) -> Extraction:
        return extract(mapping, endpoint, match, capture, doc)

    return read


def _body_has(needles: tuple[bytes, ...]) -> BodyCheck:
    """The body holds every one of these strings (a plain search: no pattern, no code)."""

    def check(header: HeaderLookup, body: Callable[[], bytes]) -> bool:
        data = body()
        return all(needle in data for needle in needles)

    return check
