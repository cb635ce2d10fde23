"""Open edX's browser events that are not player events, as ERB maps them (wire-formats.md
§5.3, §5.5), each one statement:

- `problem_check` (the browser's, sent as the learner submits; the grade is a server event no
  browser traffic carries): attempted the problem (`cmi.interaction`); its data is the answers
  as a form query string (`input_<block>_<n>_<m>=choice_1`), which names the problem block and
  is kept as the response.
- `problem_show`: asked for the problem's answer (ERB's `<problem>/answer`, a solution).
- `edx.ui.lms.sequence.{next,previous,tab}_selected`: navigated in the sequence `id`.
- `edx.ui.lms.link_clicked`, `edx.ui.lms.outline.selected`: navigated to `target_url`.
- `page_close`: terminated the page (Ralph's PageTerminated; ERB has none). The browser
  sends it as the page unloads, so it is a fact: the learner left that page.
Link and page ids drop the query and fragment, which can carry tokens.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from xapitap.events import Activity
from xapitap.events import Extraction
from xapitap.events import LearningEvent
from xapitap.events import LearningResult
from xapitap.events import PayloadError
from xapitap.events import Skip
from xapitap.platforms.base import page_url
from xapitap.platforms.base import text_or_none
from xapitap.platforms.openedx_event import BrowserEvent
from xapitap.platforms.openedx_keys import UsageKey
from xapitap.platforms.openedx_keys import usage_key
from xapitap.xapi.vocab import INTERACTION_TYPE
from xapitap.xapi.vocab import LEARNING_VERBS
from xapitap.xapi.vocab import LINK_TYPE
from xapitap.xapi.vocab import MODULE_TYPE
from xapitap.xapi.vocab import PAGE_TYPE
from xapitap.xapi.vocab import RESOURCE_TYPE
from xapitap.xapi.vocab import SOLUTION_TYPE

_SEQUENCE = frozenset(
    {
        "edx.ui.lms.sequence.next_selected",
        "edx.ui.lms.sequence.previous_selected",
        "edx.ui.lms.sequence.tab_selected",
    }
)
_OUTLINE = frozenset({"edx.ui.lms.outline.selected", "edx.ui.lms.sequence.outline.selected"})
_MAX_ANSWER_FIELDS = 200


def learning_event(event: BrowserEvent) -> Extraction | None:
    """The statement's event, or None when this is no event this module reads."""
    if event.name == "problem_check":
        return _one(_problem_check(event))
    if event.name == "problem_show":
        problem = usage_key(event.fields().get("problem"))
        if problem is None:
            raise PayloadError("names no problem block")
        answer = Activity(id=problem.iri(event.lms) + "/answer", type=SOLUTION_TYPE)
        return _one(_learning(event, "asked", answer, problem))
    if event.name in _SEQUENCE:
        sequence = usage_key(event.fields().get("id"))
        if sequence is None:
            raise PayloadError("names no sequence block")
        target = Activity(id=sequence.iri(event.lms), type=RESOURCE_TYPE)
        return _one(_learning(event, "navigated", target, sequence))
    if event.name == "edx.ui.lms.link_clicked" or event.name in _OUTLINE:
        data = event.fields()
        url = page_url(data.get("target_url"))
        if url is None:
            raise PayloadError("target_url is not an http(s) URL")
        outline = event.name in _OUTLINE
        target = Activity(
            id="".join(url),
            type=MODULE_TYPE if outline else LINK_TYPE,
            name=text_or_none(data.get("target_name")) if outline else None,
        )
        return _one(_learning(event, "navigated", target))
    if event.name == "page_close":
        page = page_url(event.page)
        if page is None:
            raise PayloadError("page is not an http(s) URL")
        return _one(_learning(event, "terminated", Activity(id="".join(page), type=PAGE_TYPE)))
    return None


def _problem_check(event: BrowserEvent) -> LearningEvent:
    answers = event.data
    if not isinstance(answers, str):
        raise PayloadError("problem_check answers are not a query string")
    blocks = {_answer_block(key) for key, _ in _answer_fields(answers)}
    blocks.discard(None)
    if len(blocks) != 1:
        raise PayloadError("answers name no single problem block")
    if event.course is None:
        raise PayloadError("no course key to place the problem in")
    (block,) = blocks
    assert block is not None
    problem = usage_key(event.course.usage("problem", block))
    if problem is None:
        raise PayloadError("answers name no valid problem block")
    target = Activity(id=problem.iri(event.lms), type=INTERACTION_TYPE)
    return _learning(event, "attempted", target, problem, LearningResult(response=answers))


def _answer_fields(answers: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(answers, keep_blank_values=True, max_num_fields=_MAX_ANSWER_FIELDS)
    except ValueError:
        raise PayloadError("problem_check answers are not a query string") from None


def _answer_block(key: str) -> str | None:
    """The block id in a capa input's name, `input_<block id>_<response>_<input>` (a block
    id may hold underscores itself: the numbers are taken from the end)."""
    name = key.removesuffix("[]")
    if not name.startswith("input_"):
        return None
    parts = name.removeprefix("input_").rsplit("_", 2)
    if len(parts) != 3 or not (parts[1].isdigit() and parts[2].isdigit()) or not parts[0]:
        return None
    return parts[0]


def _learning(
    event: BrowserEvent,
    verb: str,
    target: Activity,
    usage: UsageKey | None = None,
    result: LearningResult | None = None,
) -> LearningEvent:
    return LearningEvent(
        **event.common(),
        verb=LEARNING_VERBS[verb],
        object=target,
        result=result,
        parents=event.parents(usage),
    )


def _one(item: LearningEvent) -> Extraction:
    return Extraction(learning=[item])


def ignored(name: str) -> Extraction:
    return Extraction(ignored=[Skip(name, "no xAPI mapping")])
