"""Endpoint rules: which requests are analytics requests, and of which platform.

Matching runs in the proxy hook for every request, so the common case (a request that is no
analytics call) must cost almost nothing: a method check, then one host/path check per rule.
Rules that need the body (`body_check`) are settled apart (`Matcher.candidates`, then
`Candidates.settle`), so that the proxy can decode the body away from its event loop.
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
    # False where the adapter reads the request itself (YouTube's query strings): the
    # pipeline decodes no body for it, and a request without one is no error.
    reads_body: bool = True
    # False where the page needs its own server's answer (an LRS's: the ids it stored): the
    # proxy never answers such requests itself, whatever xapi_answer_locally says.
    answerable: bool = True
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


@dataclass(frozen=True)
class Candidates:
    """The rules whose method, host and path fit a request, in rule order, up to and with the
    first that needs no body check: the request matches the first of these whose body check
    (if any) passes. Unless `needs_body`, that is the first, whatever the body."""

    matches: tuple[RuleMatch, ...]

    @property
    def needs_body(self) -> bool:
        """Whether a body check must run (decoding the body: not on the event loop)."""
        return self.matches[0].rule.body_check is not None

    def settle(self, header: HeaderLookup, body: Callable[[], bytes]) -> RuleMatch | None:
        for match in self.matches:
            check = match.rule.body_check
            if check is None or check(header, body):
                return match
        return None


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
                        reads_body=rule.reads_body,
                        answerable=rule.answerable,
                    )
                )
        self._methods = frozenset(m for r in self._rules for m in r.methods)

    @property
    def methods(self) -> frozenset[str]:
        """The methods any rule matches; other requests need no further look."""
        return self._methods

    def candidates(self, method: str, host: str, path: str) -> Candidates | None:
        """The rules a request may match, judged without its body (cheap: no rule fits most
        requests, and then this is a set lookup and one host/path check per rule)."""
        if method not in self._methods:
            return None
        found: list[RuleMatch] = []
        for rule in self._rules:
            if method not in rule.methods:
                continue
            if rule.hosts_re is not None and rule.hosts_re.fullmatch(host) is None:
                continue
            m = rule.path_re.search(path)
            if m is None:
                continue
            found.append(RuleMatch(rule, m.groupdict()))
            if rule.body_check is None:
                break  # this one matches whatever the body: later rules never get a say
        return Candidates(tuple(found)) if found else None

    def match(
        self, method: str, host: str, path: str, header: HeaderLookup, body: Callable[[], bytes]
    ) -> RuleMatch | None:
        """The rule a request matches, running body checks (and so decoding) as needed."""
        found = self.candidates(method, host, path)
        return None if found is None else found.settle(header, body)
