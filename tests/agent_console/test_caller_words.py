"""The console's words for callers: the purposes read out before asking for personal details
exist in every language of the list, both forms, with the retention days filled in."""

from __future__ import annotations

import pytest

from agent_console.caller_words import STAFF_NAMES, read_out, read_outs, staff_name
from booking.languages import CODES
from tests.agent_console.test_console import Console, answered_and_held


def test_every_language_has_both_read_outs_with_the_days() -> None:
    assert set(read_outs()) == set(CODES)
    for language, texts in read_outs().items():
        assert set(texts) == {"plain", "notice"}, language
        assert all(text.count("{days}") == 1 for text in texts.values()), language


@pytest.mark.parametrize("language", CODES)
def test_a_read_out_fills_the_days(language: str) -> None:
    plain = read_out(language, notice=False, days=30)
    notice = read_out(language, notice=True, days=30)
    assert "30" in plain and "{" not in plain
    assert len(notice) > len(plain)  # the notice number and the card's preparation


def test_an_unknown_language_reads_the_japanese() -> None:
    assert read_out("fr", notice=False, days=7) == read_out("ja", notice=False, days=7)


def test_an_agent_reads_the_purposes_in_the_callers_language(console: Console) -> None:
    """A Korean caller's booking form shows the Japanese read-out and the Korean one, and the
    contact language offers every language the ward sends texts in."""
    agent, _ = console.signed_in("agent")
    _call, _screen, held = answered_and_held(console, agent, "8")  # 8: Korean
    assert 'class="read-out-ko"' in held.text and "여쭙겠습니다" in held.text
    assert 'class="read-out-en"' not in held.text
    assert '<option value="zh" lang="zh-Hans">简体中文</option>' in held.text
    assert '<option value="easy" lang="ja">やさしい日本語</option>' in held.text


def test_staff_read_every_language_in_japanese() -> None:
    assert set(STAFF_NAMES) == set(CODES)
    assert staff_name("zh") == "中国語（簡体字）"
    assert staff_name(None) == "日本語"
