"""The ward's languages on the phone line: the greeting offers each language the ward's
configuration gives the phone (in that language, with its key), every <Say> carries the
language and voice it is spoken in, やさしい日本語 is said slower, and a language the ward does
not offer is a wrong key."""

from __future__ import annotations

from dataclasses import replace

import pytest

from booking.languages import Offered
from ivr import terminal
from ivr.caller import PhoneCall
from ivr.flow import prompt
from tests.ivr.conftest import PUBLIC, TOKEN, Line, new_mobile

SAY = {"ja": "ja-JP", "en": "en-US", "ko": "ko-KR", "zh": "cmn-CN", "easy": "ja-JP"}
VOICES = {"zh": "Polly.Zhiyu", "easy": "Polly.Mizuki", "ja": "Polly.Mizuki"}


def offering(line: Line, configured: str) -> None:
    """The line as a ward with MADOGUCHI_LANGUAGES=``configured`` runs it."""
    state = line.http.app.state  # type: ignore[attr-defined]
    state.phone_line = replace(
        state.phone_line,
        config=replace(
            state.phone_line.config, languages=Offered.from_setting(configured).on("phone")
        ),
    )


def heard(call: PhoneCall, text: str) -> bool:
    return any(text in said for said in call.turns[-1]) if call.turns else False


def test_the_greeting_offers_every_phone_language_in_its_own_words(line: Line) -> None:
    call = line.call()
    call.dial()
    offers = [u for u in call.utterances if u.text in {prompt(c, "english") for c in SAY}]
    assert [(u.text, u.language) for u in offers] == [
        (prompt(code, "english"), SAY[code]) for code in ("en", "ko", "zh", "easy")
    ]
    assert "7" in prompt("zh", "english") and "6" in prompt("easy", "english")


@pytest.mark.parametrize(("key", "language"), [("7", "zh"), ("6", "easy")])
def test_a_key_at_the_menu_switches_the_line_and_back(line: Line, key: str, language: str) -> None:
    call = line.call()
    call.dial()
    call.press(key)
    assert heard(call, prompt(language, "menu"))
    assert line.record(call).language == language
    chosen = call.utterances[-1]
    assert (chosen.language, chosen.voice) == (SAY[language], VOICES[language])
    # やさしい日本語 is said slower (SSML prosody); Chinese at the voice's own pace.
    assert chosen.rate == ("85%" if language == "easy" else None)
    call.press(key)  # the same key again: back to Japanese
    assert heard(call, prompt("ja", "menu"))
    assert call.utterances[-1].rate is None


@pytest.mark.parametrize("language", ["zh", "easy"])
def test_every_say_of_a_call_in_the_language_carries_its_language(
    line: Line, language: str
) -> None:
    call = line.call()
    call.dial()
    call.press({"zh": "7", "easy": "6"}[language])
    for keys in ("3", "9", "0"):  # the FAQ, back to the menu, a person
        call.press(keys)
    assert call.state == "queued" and call.queue == f"madoguchi-{language}"
    assert all(u.language in SAY.values() and u.voice for u in call.utterances)
    after = call.utterances[[u.text for u in call.utterances].index(prompt(language, "menu")) :]
    # The FAQ is written in Japanese and English: a Chinese caller hears its titles in the
    # Chinese sentence, and an answer would come in the English voice.
    assert {u.language for u in after} == {SAY[language]}


def test_a_language_the_ward_does_not_offer_is_a_wrong_key(line: Line) -> None:
    offering(line, "ja,en,zh")  # no Korean, no やさしい日本語
    call = line.call()
    call.dial()
    said = " ".join(call.said)
    assert prompt("zh", "english") in said and prompt("en", "english") in said
    assert prompt("ko", "english") not in said and prompt("easy", "english") not in said
    call.press("6")
    assert heard(call, prompt("ja", "wrong_key"))
    call.press("8")
    assert heard(call, prompt("ja", "wrong_key"))
    call.press("7")
    assert heard(call, prompt("zh", "menu"))


def test_a_chinese_caller_keys_an_era_birth_date_and_hears_both_years(line: Line) -> None:
    call = line.call()
    call.dial()
    call.press("7")
    for key in ("1", "3", "1", "1#"):  # PIN reset, one person, the main office
        call.press(key)
    assert heard(call, prompt("zh", "offer_keys"))
    call.press("1")
    call.press("3330401#")  # 昭和33年4月1日
    assert heard(call, "昭和33年，1958年4月1日，对吗？")
    call.hang_up()


def test_an_easy_japanese_caller_keys_an_era_birth_date(line: Line) -> None:
    call = line.call()
    call.dial()
    call.press("6")
    for key in ("1", "3", "1", "1#"):  # PIN reset, one person, the main office
        call.press(key)
    call.press("1")
    assert heard(call, "昭和は3、平成は4を押します。")
    call.press("4010401#")  # 平成元年4月1日
    assert heard(call, "平成元年4月1日、ですね。")
    call.hang_up()


@pytest.mark.parametrize(("language", "key"), [("zh", "7"), ("easy", "6")])
def test_the_terminal_phone_chooses_the_language_for_the_developer(
    line: Line, language: str, key: str
) -> None:
    answers = iter(["q"])
    printed: list[str] = []
    code = terminal.run(
        "http://testserver",
        public_base_url=PUBLIC,
        auth_token=TOKEN,
        from_number=new_mobile(),
        language=language,
        input_fn=lambda _prompt: next(answers),
        print_fn=printed.append,
        http=line.http,
    )
    assert code == 0
    assert f"(pressing {key} for {terminal.LANGUAGE_KEYS[language][1]})" in printed
    assert f"IVR: {prompt(language, 'menu')}" in printed
