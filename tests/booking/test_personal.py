"""Residents' personal fields without a database: the My Number guard, phones, kana names,
notice numbers, booking codes and the vault."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import phonenumbers
import pytest
from cryptography.fernet import Fernet
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.jp import in_ as stdnum_my_number

from booking import codes
from booking.errors import BookingError
from booking.personal import (
    Vault,
    contains_my_number,
    display_phone,
    normalise_name_kana,
    normalise_notice_number,
    parse_phone,
    refuse_my_number,
)

# --- The My Number guard ------------------------------------------------------------------

VALID_NUMBERS = ["123456789018", "621498320257", "111111111118", "987654321093"]


def published_check_digit(first_eleven: str) -> int:
    """The check digit as the My Number ordinance publishes it, written out independently."""
    assert len(first_eleven) == 11 and first_eleven.isdigit()
    total = 0
    for n, digit in enumerate(reversed(first_eleven), start=1):
        weight = n + 1 if n <= 6 else n - 5
        total += int(digit) * weight
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def published_rule(twelve: str) -> bool:
    return int(twelve[11]) == published_check_digit(twelve[:11])


def spaced(number: str, sep: str) -> str:
    return sep.join((number[:4], number[4:8], number[8:]))


def full_width(text: str) -> str:
    return "".join(chr(ord(c) - ord("0") + ord("０")) if c.isdigit() else c for c in text)


def test_the_sample_numbers_are_valid_by_stdnum_and_by_the_published_rule() -> None:
    for number in VALID_NUMBERS:
        assert stdnum_my_number.is_valid(number), number
        assert published_rule(number), number
    for number in ("123456789012", "621498320258"):
        assert not stdnum_my_number.is_valid(number)
        assert not published_rule(number)


@pytest.mark.parametrize("number", VALID_NUMBERS)
@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda n: n, id="plain"),
        pytest.param(lambda n: spaced(n, " "), id="spaces"),
        pytest.param(lambda n: spaced(n, "-"), id="hyphens"),
        pytest.param(lambda n: spaced(n, "\u3000"), id="ideographic-spaces"),
        pytest.param(lambda n: spaced(n, "ー"), id="long-vowel-mark"),
        pytest.param(full_width, id="full-width"),
        pytest.param(lambda n: full_width(spaced(n, "－")), id="full-width-hyphens"),
        pytest.param(lambda n: f"私の番号は{n}です", id="in-japanese-text"),
        pytest.param(lambda n: f"my number: {spaced(n, ' ')}, thanks", id="in-english-text"),
    ],
)
def test_a_valid_individual_number_is_found(number: str, write: Callable[[str], str]) -> None:
    text = write(number)
    assert contains_my_number(text), text
    with pytest.raises(BookingError) as refused:
        refuse_my_number("note", text)
    assert refused.value.code == "my_number_refused"
    assert refused.value.field == "note"
    assert refused.value.status == 422


def test_the_examples_in_the_brief_are_found() -> None:
    assert contains_my_number("6214 9832 0257")
    assert contains_my_number("６２１４９８３２０２５７")
    assert contains_my_number("私の番号は123456789018です")
    assert contains_my_number("6214-9832-0257")


@pytest.mark.parametrize(
    "text",
    [
        "123456789012",  # wrong check digit
        "621498320258",  # wrong check digit
        "6214 9832 0258",
        "１２３４５６７８９０１２",
        "12345678901",  # 11 digits
        "1234567890180",  # 13 digits, although its first 12 pass the rule
        "0123456789018",  # 13 digits, although its last 12 pass the rule
        "090-1234-5678",  # a mobile phone number
        "03-5273-4111",
        "AB1-234567",
        "ヤマダ タロウ",
        "",
    ],
)
def test_other_numbers_are_not_flagged(text: str) -> None:
    assert not contains_my_number(text)
    refuse_my_number("note", text)  # does not raise


@pytest.mark.parametrize(
    "text",
    ["090-1234-5678 123456789018", "123456789018 090-1234-5678", "09012345678 6214 9832 0257"],
)
def test_a_number_next_to_another_number_is_still_found(text: str) -> None:
    assert contains_my_number(text)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_the_guard_follows_the_published_rule_on_random_digits(digits: str) -> None:
    assert contains_my_number(digits) == published_rule(digits)
    assert contains_my_number(spaced(digits, " ")) == published_rule(digits)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789", min_size=11, max_size=11), st.integers(1, 9))
def test_valid_numbers_are_found_and_a_wrong_check_digit_is_not(body: str, shift: int) -> None:
    check = published_check_digit(body)
    assert contains_my_number(f"番号{body}{check}です")
    wrong = (check + shift) % 10
    assert not contains_my_number(f"番号{body}{wrong}です")


# --- Phone numbers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "e164", "line_type"),
    [
        ("090-1234-5678", "+819012345678", "mobile"),
        ("080-2345-6789", "+818023456789", "mobile"),
        ("07034567890", "+817034567890", "mobile"),
        ("03-5273-4111", "+81352734111", "fixed_line"),
        ("03 1234 5678", "+81312345678", "fixed_line"),
        ("050-1234-5678", "+815012345678", "voip"),
        ("０９０－１２３４－５６７８", "+819012345678", "mobile"),
        ("+81 90 1234 5678", "+819012345678", "mobile"),
        ("+81-3-5273-4111", "+81352734111", "fixed_line"),
        ("  090 1234 5678  ", "+819012345678", "mobile"),
    ],
)
def test_phone_numbers_become_e164_with_their_line_type(
    raw: str, e164: str, line_type: str
) -> None:
    phone = parse_phone(raw)
    assert phone.e164 == e164
    assert phone.line_type == line_type


@pytest.mark.parametrize(
    "raw", ["", "hello", "0120", "090-1234", "03-1234", "12", "090-1234-5678-9999", "電話番号"]
)
def test_garbage_and_short_numbers_are_refused(raw: str) -> None:
    with pytest.raises(BookingError) as refused:
        parse_phone(raw, field="callback")
    assert refused.value.code == "invalid_phone"
    assert refused.value.field == "callback"


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"\A(0|\+[1-9]{1,3})[0-9]{3,12}\Z"))
def test_a_phone_is_taken_exactly_when_phonenumbers_calls_it_valid(raw: str) -> None:
    """parse_phone asks for the number's type alone: it must agree with is_valid_number."""
    try:
        number = phonenumbers.parse(raw, "JP")
    except phonenumbers.NumberParseException:
        number = None
    valid = number is not None and phonenumbers.is_valid_number(number)
    refused: str | None = None
    try:
        phone = parse_phone(raw)
    except BookingError as exc:
        refused = exc.code
    else:
        assert number is not None
        assert phone.e164 == phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if refused != "my_number_refused":  # refused before it is parsed as a phone at all
        assert refused == (None if valid else "invalid_phone")


def test_a_my_number_given_as_a_phone_is_refused_as_such() -> None:
    with pytest.raises(BookingError) as refused:
        parse_phone("1234-5678-9018")
    assert refused.value.code == "my_number_refused"


# --- Names in kana ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("やまだ たろう", "ヤマダ タロウ"),
        ("ヤマダ タロウ", "ヤマダ タロウ"),
        ("ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダ タロウ"),  # half-width, with a separate dakuten
        ("ｻﾄｳ　ﾊﾅｺ", "サトウ ハナコ"),
        ("やまだ\u3000\u3000 たろう", "ヤマダ タロウ"),  # spaces collapsed
        ("  きょう  こ  ", "キョウ コ"),
        ("Smith John", "Smith John"),
        ("O'Brien Mary-Jane", "O'Brien Mary-Jane"),
        ("ゔぁいおりん", "ヴァイオリン"),
    ],
)
def test_names_are_normalised_to_katakana(raw: str, expected: str) -> None:
    assert normalise_name_kana(raw) == expected


@pytest.mark.parametrize("raw", ["山田太郎", "やまだ太郎", "", "   ", "ヤマダ1", "ア" * 61])
def test_bad_names_are_refused(raw: str) -> None:
    with pytest.raises(BookingError) as refused:
        normalise_name_kana(raw, field="members[0].name")
    assert refused.value.code == "invalid_name_kana"
    assert refused.value.field == "members[0].name"


def test_a_name_of_sixty_characters_is_the_longest() -> None:
    assert normalise_name_kana("あ" * 60) == "ア" * 60
    with pytest.raises(BookingError):
        normalise_name_kana("あ" * 61)


# --- Notice numbers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "ab1-234567",
        "AB1234567",
        "AB1-234567",
        "ＡＢ１－２３４５６７",
        "ａｂ１２３４５６７",
        " AB1 234567 ",
    ],
)
def test_notice_numbers_are_normalised(raw: str) -> None:
    assert normalise_notice_number(raw) == "AB1-234567"


@pytest.mark.parametrize(
    "raw",
    ["AB-234567", "ABCD-234567", "AB1-23456", "AB1-2345678", "AB1_234567", "AB1-23456A", "", "あ"],
)
def test_wrong_notice_numbers_are_refused(raw: str) -> None:
    with pytest.raises(BookingError) as refused:
        normalise_notice_number(raw, field="members[1].notice_number")
    assert refused.value.code == "invalid_notice_number"
    assert refused.value.field == "members[1].notice_number"


# --- Booking codes ------------------------------------------------------------------------


def substitutions(code: str) -> list[str]:
    return [
        code[:i] + d + code[i + 1 :] for i in range(len(code)) for d in "0123456789" if d != code[i]
    ]


def transpositions(code: str) -> list[str]:
    return [
        code[:i] + code[i + 1] + code[i] + code[i + 2 :]
        for i in range(len(code) - 1)
        if code[i] != code[i + 1]
    ]


def test_new_codes_have_eight_digits_and_no_leading_zero() -> None:
    drawn = [codes.new_code() for _ in range(300)]
    for code in drawn:
        assert len(code) == codes.CODE_LENGTH == 8
        assert code.isascii() and code.isdigit()
        assert code[0] != "0"
        assert codes.is_well_formed(code)
    assert len(set(drawn)) > 290  # random, not a counter or a constant


def test_every_keypad_slip_is_caught() -> None:
    for _ in range(300):
        code = codes.new_code()
        for slip in substitutions(code):
            assert not codes.is_well_formed(slip), (code, slip)
        for swap in transpositions(code):
            assert not codes.is_well_formed(swap), (code, swap)


def test_the_slip_helpers_make_what_they_say() -> None:
    assert len(substitutions("12345678")) == 8 * 9
    assert transpositions("11223") == ["12123", "11232"]


@pytest.mark.parametrize(
    "code", ["", "1234567", "123456789", "abcdefgh", "1234 567", "１２３４５６７８"]
)
def test_malformed_codes_are_not_well_formed(code: str) -> None:
    assert not codes.is_well_formed(code)


def test_a_well_formed_code_in_full_width_is_not_accepted() -> None:
    code = codes.new_code()
    assert not codes.is_well_formed(full_width(code))
    assert not codes.is_well_formed(code + "0")
    assert not codes.is_well_formed(code[:-1])


# --- The vault ----------------------------------------------------------------------------


def key() -> str:
    return Fernet.generate_key().decode()


def test_encrypt_and_decrypt_round_trip() -> None:
    vault = Vault.from_keys([key()], secrets.token_urlsafe(32))
    for value in ("ヤマダ タロウ", "+819012345678", "1950-04-01", "AB1-234567"):
        token = vault.encrypt(value)
        assert value not in token
        assert vault.decrypt(token) == value
    assert vault.encrypt("+819012345678") != vault.encrypt("+819012345678")  # fresh IV each time


def test_digests_are_deterministic_and_keyed() -> None:
    data_key = key()
    a = Vault.from_keys([data_key], "lookup-key-a")
    again = Vault.from_keys([key()], "lookup-key-a")
    b = Vault.from_keys([data_key], "lookup-key-b")
    digest = a.digest("+819012345678")
    assert len(digest) == 64 and "819012345678" not in digest
    assert a.digest("+819012345678") == digest
    assert again.digest("+819012345678") == digest  # the lookup key alone decides
    assert b.digest("+819012345678") != digest
    assert a.digest("+819012345679") != digest
    assert a.same("+819012345678", digest)
    assert not a.same("+819012345679", digest)
    assert not b.same("+819012345678", digest)
    assert not a.same("+819012345678", None)


def test_a_rotated_key_still_decrypts_old_values() -> None:
    old_key, new_key, lookup = key(), key(), secrets.token_urlsafe(32)
    old = Vault.from_keys([old_key], lookup)
    token = old.encrypt("ヤマダ ハナコ")
    rotated = Vault.from_keys([new_key, old_key], lookup)
    assert rotated.decrypt(token) == "ヤマダ ハナコ"
    fresh = rotated.encrypt("ヤマダ ハナコ")
    assert Vault.from_keys([new_key], lookup).decrypt(fresh) == "ヤマダ ハナコ"  # newest first
    with pytest.raises(RuntimeError):
        old.decrypt(fresh)


def test_an_unrelated_key_cannot_decrypt() -> None:
    lookup = secrets.token_urlsafe(32)
    token = Vault.from_keys([key()], lookup).encrypt("ヤマダ タロウ")
    with pytest.raises(RuntimeError, match="cannot be decrypted"):
        Vault.from_keys([key()], lookup).decrypt(token)
    with pytest.raises(RuntimeError):
        Vault.from_keys([key()], lookup).decrypt("not a token")


def test_a_vault_needs_both_keys() -> None:
    with pytest.raises(ValueError, match="needed"):
        Vault.from_keys([], "lookup")
    with pytest.raises(ValueError, match="needed"):
        Vault.from_keys([key()], "")


@pytest.mark.parametrize(
    "text",
    ["6214.9832.0257", "6214・9832・0257", "６２１４．９８３２．０２５７", "6214 / 9832 / 0257"],
)
def test_the_guard_sees_numbers_written_with_dots_and_middle_dots(text: str) -> None:
    assert contains_my_number(text)


def test_an_international_phone_number_is_not_taken_for_a_my_number() -> None:
    # +81 and a 10-digit number make 12 digits; one in ten would pass the check digit.
    numbers = [f"+8190{n:08d}" for n in range(10_000_000, 10_000_100)]
    assert (
        sum(1 for n in numbers if "".join(c for c in n if c.isdigit()) and published_rule(n[1:]))
        > 0
    )
    assert not any(contains_my_number(n) for n in numbers)


@pytest.mark.parametrize(
    ("e164", "shown"),
    [
        ("+819011112222", "090-1111-2222"),
        ("+81352734111", "03-5273-4111"),
        ("+81120123456", "0120-123-456"),
        ("+12025550100", "+1 202-555-0100"),
        ("anonymous", "anonymous"),
        (None, ""),
    ],
)
def test_numbers_are_shown_as_people_write_them(e164: str | None, shown: str) -> None:
    assert display_phone(e164) == shown
