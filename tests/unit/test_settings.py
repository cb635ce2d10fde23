from __future__ import annotations

import re
from pathlib import Path

import pytest

from xapitap import settings
from xapitap.platforms import NAMES
from xapitap.xapi.vocab import VERBS

PLATFORMS = NAMES


def values(**overrides: object) -> dict[str, object]:
    base = {name: default for name, (_, default, _) in settings.OPTIONS.items()}
    return base | overrides


def test_defaults_keep_statements_in_the_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XAPITAP_HOME", str(tmp_path))
    s = settings.parse(values(), PLATFORMS)
    assert s.store == tmp_path / "xapitap.sqlite3" and s.targets == ()
    assert not s.answer_locally


def test_lrs_endpoint_gets_a_trailing_slash_and_hides_the_password() -> None:
    s = settings.parse(
        values(
            xapi_lrs_endpoint="http://127.0.0.1:8100/xAPI",
            xapi_lrs_username="u",
            xapi_lrs_password="secret",
        ),
        PLATFORMS,
    )
    (target,) = s.targets
    assert target.name == "default"
    assert target.statements_url == "http://127.0.0.1:8100/xAPI/statements"
    assert "secret" not in repr(s) and "secret" not in str(s)


def test_store_path_expands_the_home_directory() -> None:
    assert "~" not in str(settings.parse(values(xapi_store="~/x.sqlite3"), PLATFORMS).store)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"xapi_lrs_endpoint": "127.0.0.1:8100"}, "must be an http"),
        ({"xapi_lrs_endpoint": "http://u:p@h/xAPI/"}, "not the URL"),
        ({"xapi_lrs_endpoint": "http://h/xAPI/", "xapi_lrs_username": "u"}, "both"),
        ({"xapi_lrs_password": "p"}, "xapi_lrs_endpoint is not"),
        ({"xapi_max_body_bytes": 0}, "positive"),
        ({"xapi_flush_seconds": -1}, "negative"),
        ({"xapi_hosts": ["events.example.org"]}, "PLATFORM=HOST-GLOB"),
        ({"xapi_hosts": ["mixpanel=api.example.org"]}, "unknown platform"),
    ],
)
def test_invalid_values_say_what_is_wrong(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        settings.parse(values(**overrides), PLATFORMS)


def test_misspelled_options_are_caught_with_a_suggestion() -> None:
    problems = settings.misspelled(["xapi_lrs_endpiont", "block_global", "xapi_frobnicate"])
    assert problems == [
        "unknown option xapi_lrs_endpiont; did you mean xapi_lrs_endpoint?",
        "unknown option xapi_frobnicate",
    ]


def test_targets_file_adds_targets_beside_the_single_target_options(tmp_path: Path) -> None:
    path = tmp_path / "targets.toml"
    path.write_text(
        '[[target]]\nname = "research"\nendpoint = "https://lrs.example.org/xAPI"\n'
        'username = "key"\npassword_env = "XAPITAP_TEST_SECRET"\nplatforms = ["udemy"]\n'
        'verbs = ["completed"]\nversion = "2.0.0"\n'
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XAPITAP_TEST_SECRET", "s3cret")
        s = settings.parse(
            values(xapi_lrs_endpoint="http://127.0.0.1:8100/xAPI/", xapi_targets_file=str(path)),
            PLATFORMS,
        )
    default, research = s.targets
    assert research.password.get_secret_value() == "s3cret" and "s3cret" not in repr(research)
    completed, played = VERBS["completed"], VERBS["played"]
    assert research.accepts("udemy", completed) and not research.accepts("udemy", played)
    assert not research.accepts("coursera", completed)
    assert default.accepts("coursera", played)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[[target]]\nname = 'a'\n", "target.0.endpoint: Field required"),
        ("[[target]]\nname='a'\nendpoint='ftp://x'\n", "must be an http(s) URL"),
        ("[[target]]\nname='a'\nendpoint='http://x/'\nverbs=['liked']\n", "unknown verbs"),
        (
            "[[target]]\nname='a'\nendpoint='http://x/'\nverbs=['complted']\n",
            "(did you mean completed?)",
        ),
        (
            "[[target]]\nname='a'\nendpoint='http://x/'\nplatforms=['udemi']\n",
            "unknown platforms ['udemi'] (did you mean udemy?)",
        ),
        ("[[target]]\nname='a'\nendpoint='http://x/'\npassword_env='NOPE_X1'\n", "not set"),
        ("[[target]]\nname='a'\nendpoint='http://x/'\nsecret='x'\n", "Extra inputs"),
        (
            "[[target]]\nname='a'\nendpoint='http://x/'\n[[target]]\nname='a'\n"
            "endpoint='http://y/'\n",
            "names must differ",
        ),
        ("target = [", "not valid TOML"),
    ],
)
def test_bad_targets_files_say_where_and_what(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "targets.toml"
    path.write_text(toml)
    with pytest.raises(ValueError, match=re.escape(message)):
        settings.parse(values(xapi_targets_file=str(path)), PLATFORMS)


def test_xapi_hosts_takes_carried_platforms_and_suggests_names() -> None:
    s = settings.parse(values(xapi_hosts=["udacity=events.example.org"]), PLATFORMS)
    assert s.extra_hosts == {"udacity": ["events.example.org"]}
    with pytest.raises(ValueError, match=re.escape("did you mean coursera?")):
        settings.parse(values(xapi_hosts=["cousera=x.example.org"]), PLATFORMS)
