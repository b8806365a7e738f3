"""Lists of names in each language (foundation.i18n.join_list): CLDR's narrow list, no conjunction."""

from __future__ import annotations

import pytest

from foundation.i18n import join_list


@pytest.mark.parametrize("locale", ["zh_Hans", "zh-CN"])
def test_chinese_lists_take_the_enumeration_comma(locale: str) -> None:
    assert join_list([], locale) == ""
    assert join_list(["滨江区"], locale) == "滨江区"
    assert join_list(["滨江区", "澜江市"], locale) == "滨江区、澜江市"
    assert join_list(["甲", "乙", "丙", "丁"], locale) == "甲、乙、丙、丁"  # no 和 before the last


@pytest.mark.parametrize("locale", ["en", "en-GB"])
def test_english_lists_take_a_comma_and_no_and(locale: str) -> None:
    assert join_list(["Binjiang District"], locale) == "Binjiang District"
    assert join_list(["Binjiang District", "Lanjiang City"], locale) == "Binjiang District, Lanjiang City"
    assert join_list(iter(["A", "B", "C", "D"]), locale) == "A, B, C, D"


def test_names_are_not_format_strings() -> None:
    assert join_list(["{0}", "{1}", "%(x)s"], "en") == "{0}, {1}, %(x)s"
    assert join_list(["{0}", "{}", "x"], "zh_Hans") == "{0}、{}、x"
