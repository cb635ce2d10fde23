"""Endpoint rules: which requests are analytics requests, and of which platform.

Matching runs in the proxy hook for every request, so the common case (a request that is no
analytics call) must cost almost nothing: a method check, then one host/path check per rule.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field

# A body check gets a header lookup (lower-case name) and a function that returns the
# content-decoded, size-capped body, so the body is only read when a rule needs it.
HeaderLookup = Callable[[str], str | None]
BodyCheck = Callable[[HeaderLookup, Callable[[], bytes]], bool]


@dataclass(frozen=True)
class EndpointRule:
    """One kind of analytics request.

    `path` is searched case-insensitively in the URL path; named groups are handed to the
    platform adapter. `hosts` (a full match on the host, case-insensitive) is None where the
    endpoint can live on any host; `body_check` then tells such requests from other traffic.
    """

    name: str
    platform: str
    path: str
    hosts: str | None = None
    methods: frozenset[str] = frozenset({"POST"})
    body_check: BodyCheck | None = None
    path_re: re.Pattern[str] = field(init=False, repr=False, compare=False)
    hosts_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path_re", re.compile(self.path, re.IGNORECASE))
        hosts_re = re.compile(self.hosts, re.IGNORECASE) if self.hosts else None
        object.__setattr__(self, "hosts_re", hosts_re)


@dataclass(frozen=True)
class RuleMatch:
    rule: EndpointRule
    params: Mapping[str, str]


def host_glob(pattern: str) -> str:
    """A host glob (`*.example.org`) as a regular expression."""
    return fnmatch.translate(pattern.strip().lower())


class Matcher:
    def __init__(
        self, rules: Iterable[EndpointRule], extra_hosts: Mapping[str, Iterable[str]] | None = None
    ) -> None:
        """`extra_hosts` maps a platform to host globs that count as its collectors too.

        On such a host, the platform's host-bound rules apply, and its any-host rules apply
        without their body check: the user has said that the host is a collector.
        """
        extra = {p: [host_glob(h) for h in hosts] for p, hosts in (extra_hosts or {}).items()}
        self._rules: list[EndpointRule] = []
        for rule in rules:
            self._rules.append(rule)
            added = extra.get(rule.platform)
            if added:
                self._rules.append(
                    EndpointRule(
                        name=rule.name,
                        platform=rule.platform,
                        path=rule.path,
                        hosts="|".join(f"(?:{h})" for h in added),
                        methods=rule.methods,
                    )
                )
        self._methods = frozenset(m for r in self._rules for m in r.methods)

    @property
    def methods(self) -> frozenset[str]:
        """The methods any rule matches; other requests need no further look."""
        return self._methods

    def match(
        self, method: str, host: str, path: str, header: HeaderLookup, body: Callable[[], bytes]
    ) -> RuleMatch | None:
        if method not in self._methods:
            return None
        for rule in self._rules:
            if method not in rule.methods:
                continue
            if rule.hosts_re is not None and rule.hosts_re.fullmatch(host) is None:
                continue
            m = rule.path_re.search(path)
            if m is None:
                continue
            if rule.body_check is not None and not rule.body_check(header, body):
                continue
            return RuleMatch(rule, m.groupdict())
        return None
