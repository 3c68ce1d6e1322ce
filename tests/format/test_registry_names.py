"""The registry's grammar: GTO's tag names, model references, versions and their order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitxp.errors import InvalidValueError
from gitxp.format import refs
from gitxp.format import registry as fmt


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("churn@v0.0.1", fmt.TagName("churn", "register", "v0.0.1")),
        ("churn@v1.0.0-rc.1+b7", fmt.TagName("churn", "register", "v1.0.0-rc.1+b7")),
        ("churn@v0.0.1!#3", fmt.TagName("churn", "deregister", "v0.0.1", None, 3)),
        ("churn#prod#1", fmt.TagName("churn", "assign", None, "prod", 1)),
        ("churn#prod", fmt.TagName("churn", "assign", None, "prod")),
        ("churn#prod!#5", fmt.TagName("churn", "unassign", None, "prod", 5)),
        ("churn@deprecated", fmt.TagName("churn", "deprecate")),
        ("churn@deprecated#4", fmt.TagName("churn", "deprecate", counter=4)),
        ("team/churn#stage-2#12", fmt.TagName("team/churn", "assign", None, "stage-2", 12)),
        ("models/x=churn@v2.0.0", fmt.TagName("models/x:churn", "register", "v2.0.0")),
    ],
)
def test_gto_tag_names_parse(name: str, expected: fmt.TagName) -> None:
    assert fmt.parse_tag(name) == expected
    assert refs.problem(fmt.TAGS_PREFIX + name) is None  # git takes every one of them


@pytest.mark.parametrize(
    "name",
    [
        "v1.0.0",
        "churn",
        "churn@1.0.0",
        "churn@v01.0.0",
        "churn@v1.0",
        "churn@created",
        "churn#prod#x",
        "-churn@v1.0.0",
        "churn-@v1.0.0",
        "churn@v1.0.0\n",
        "churn#prod#1\n",
        "churn@latest",
    ],
)
def test_other_tags_are_not_registry_tags(name: str) -> None:
    assert fmt.parse_tag(name) is None


_ALNUM = "abcXYZ019"
_NAMES = st.builds(
    lambda a, mid, b: a + mid + b,
    st.sampled_from(_ALNUM),
    st.text(alphabet=_ALNUM + "-_/", max_size=8).filter(lambda t: "//" not in t),
    st.sampled_from(_ALNUM),
) | st.sampled_from(_ALNUM)


@given(
    model=_NAMES | st.builds(lambda d, n: f"{d}:{n}", st.sampled_from(["dir", "a/b.c"]), _NAMES),
    stage=_NAMES,
    counter=st.integers(1, 10**6),
    version=st.sampled_from(["v0.0.1", "v1.2.3", "v10.0.0-alpha.1", "v1.0.0+build.5"]),
)
def test_written_names_parse_back(model: str, stage: str, counter: int, version: str) -> None:
    for action, kw in [
        (fmt.REGISTER, {"version": version}),
        (fmt.DEREGISTER, {"version": version, "counter": counter}),
        (fmt.ASSIGN, {"stage": stage, "counter": counter}),
        (fmt.UNASSIGN, {"stage": stage, "counter": counter}),
        (fmt.DEPRECATE, {"counter": counter}),
    ]:
        parsed = fmt.parse_tag(fmt.tag_name(action, model, **kw))  # type: ignore[arg-type]
        assert parsed is not None and parsed.model == model and parsed.action == action
        assert parsed.counter == kw.get("counter")


def test_references_parse() -> None:
    assert fmt.parse_reference("churn#prod") == fmt.ModelReference("churn", stage="prod")
    assert fmt.parse_reference("churn@v1.2.3") == fmt.ModelReference("churn", "v1.2.3")
    assert fmt.parse_reference("churn@latest").latest  # type: ignore[union-attr]
    assert fmt.parse_reference("churn@greatest").latest  # type: ignore[union-attr]
    for text in ["churn", "churn@1.2.3", "churn@", "#prod", "swift-otter-42", "a@b", "x@v1"]:
        assert fmt.parse_reference(text) is None, text


def test_versions_order_as_semver() -> None:
    shuffled = ["v1.0.0", "v0.10.0", "v1.0.0-rc.1", "v0.9.0", "v1.0.0-alpha", "v1.0.0-alpha.1"]
    shuffled += ["v1.0.0-beta.11", "v1.0.0-beta.2", "v2.0.0", "v1.0.1"]
    assert sorted(shuffled, key=fmt.semver_key) == [
        "v0.9.0",
        "v0.10.0",
        "v1.0.0-alpha",
        "v1.0.0-alpha.1",
        "v1.0.0-beta.2",
        "v1.0.0-beta.11",
        "v1.0.0-rc.1",
        "v1.0.0",
        "v1.0.1",
        "v2.0.0",
    ]


def test_bumps() -> None:
    assert fmt.bump(None, None) == "v0.0.1"
    assert fmt.bump(None, "minor") == "v0.1.0"
    assert fmt.bump("v1.2.3", None) == "v1.2.4"
    assert fmt.bump("v1.2.3", "minor") == "v1.3.0"
    assert fmt.bump("v1.2.3", "major") == "v2.0.0"
    assert fmt.bump("v1.0.0-rc.1", "patch") == "v1.0.1"
    with pytest.raises(InvalidValueError):
        fmt.bump("v1.0.0", "huge")


@pytest.mark.parametrize("bad", ["1.0.0", "v1.0", "v1.0.0.0", "v01.0.0", "latest", "", "v1.0.0\n"])
def test_a_version_that_is_not_semver_is_refused(bad: str) -> None:
    with pytest.raises(InvalidValueError, match="version"):
        fmt.check_version(bad)


@pytest.mark.parametrize("bad", ["", "-churn", "churn-", "ch urn", "ch@urn", "a//b", "c#d", "é"])
def test_a_bad_model_name_is_refused(bad: str) -> None:
    with pytest.raises(InvalidValueError, match="model"):
        fmt.check_model_name(bad)


def test_trailers_round_trip_and_gto_first_line_stays_first() -> None:
    message = fmt.tag_message("Registering artifact churn version v0.0.1", {"Gitxp-Run": "x1"})
    assert message.splitlines()[0] == "Registering artifact churn version v0.0.1"
    assert fmt.message_trailers(message) == {"Gitxp-Run": "x1"}
    assert fmt.message_trailers("Registering artifact churn version v0.0.1") == {}
