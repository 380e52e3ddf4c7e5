"""Residents' personal fields: validation, encryption at rest, lookup hashes, My Number guard."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

import phonenumbers
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from stdnum.jp import in_ as my_number

from booking.errors import BookingError
from booking.languages import CODES, NAMES, Language
from booking.views import MemberInput, MemberView, ResidentInput

# The languages the service speaks to residents (booking/languages.py is the one list): what a
# booking's contact language and the API's ``language`` are checked against.
LANGUAGES: tuple[Language, ...] = CODES
# Each language by its own name, as a chooser lists it.
LANGUAGE_NAMES: dict[str, str] = NAMES


class FieldProblems(BookingError):
    """Every field's problem at once, so a resident mends them all in one go. Its own code and
    field are the first problem's: what a refusal of that field alone would have said."""

    def __init__(self, problems: dict[str, BookingError]) -> None:
        first = next(iter(problems.values()))
        super().__init__(first.code, field=first.field, **first.params)
        self.problems = problems

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["problems"] = [
            {
                "field": field,
                "code": error.code,
                "problem": error.message("en"),
                "message": {"ja": error.message("ja"), "en": error.message("en")},
            }
            for field, error in self.problems.items()
        ]
        return body


@dataclass(frozen=True)
class Vault:
    """Encrypts personal fields (newest key first, older keys still decrypt) and hashes lookups."""

    fernet: MultiFernet
    lookup_key: bytes

    @classmethod
    def from_keys(cls, data_keys: list[str], lookup_key: str) -> Vault:
        if not data_keys or not lookup_key:
            raise ValueError("a data key and a lookup key are needed")
        return cls(MultiFernet([Fernet(k.encode()) for k in data_keys]), lookup_key.encode())

    def encrypt(self, value: str) -> str:
        return self.fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        if token == "":  # erased under the retention rule (a required column keeps "")
            return ""
        try:
            return self.fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:  # wrong key set: say so rather than return garbage
            raise RuntimeError(
                "personal field cannot be decrypted with the configured keys"
            ) from exc

    def digest(self, value: str) -> str:
        return hmac.new(self.lookup_key, value.encode(), hashlib.sha256).hexdigest()

    def derive(self, label: str) -> bytes:
        """A key for another purpose (signing page tokens), separated from lookups by its label."""
        return hmac.new(self.lookup_key, b"derive:" + label.encode(), hashlib.sha256).digest()

    def same(self, value: str, digest: str | None) -> bool:
        return digest is not None and hmac.compare_digest(
            self.digest(value).encode(), digest.encode()
        )


# --- The My Number guard ------------------------------------------------------------------

# Digit groups joined by separators, as people write "1234 5678 9018", "1234-5678-9018",
# "1234.5678.9018", "1234・5678・9018" or "1234 / 5678 / 9018".
_SEPARATOR = r"[ \-./・_]+"
_DIGIT_RUN = re.compile(rf"\d+(?:{_SEPARATOR}\d+)*")


def contains_my_number(text: str) -> bool:
    """True if the text holds a 12-digit number that passes the My Number check-digit rule,
    written whole or in groups ("1234 5678 9018"), alone or beside other numbers."""
    normalised = unicodedata.normalize("NFKC", text).replace("\u2212", "-").replace("\u30fc", "-")
    for found in _DIGIT_RUN.finditer(normalised):
        if normalised[found.start() - 1 : found.start()] == "+":
            continue  # +81 90 1234 5678: an international phone number, not an individual number
        groups = re.split(_SEPARATOR, found.group())
        # Every stretch of whole groups that adds up to 12 digits is a candidate.
        for first in range(len(groups)):
            digits = ""
            for group in groups[first:]:
                digits += group
                if len(digits) >= 12:
                    break
            if len(digits) == 12 and my_number.is_valid(digits):
                return True
    return False


def refuse_my_number(field: str, text: str) -> None:
    """Refuse any field that would hold an individual number: it must never be stored."""
    if contains_my_number(text):
        raise BookingError("my_number_refused", field=field)


# --- Phone numbers ------------------------------------------------------------------------

_LINE_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE: "mobile",
    phonenumbers.PhoneNumberType.FIXED_LINE: "fixed_line",
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    phonenumbers.PhoneNumberType.VOIP: "voip",
    phonenumbers.PhoneNumberType.TOLL_FREE: "toll_free",
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium_rate",
    phonenumbers.PhoneNumberType.PAGER: "pager",
    phonenumbers.PhoneNumberType.UAN: "uan",
}


@dataclass(frozen=True)
class Phone:
    e164: str
    line_type: str


def parse_phone(raw: str, field: str = "phone") -> Phone:
    """Parse a Japanese (or +-prefixed international) number into E.164 with its line type."""
    text = unicodedata.normalize("NFKC", raw).strip()
    # The whole entry, not a scan: a phone number with a stray group must read as a bad phone.
    digits = re.sub(r"\D", "", text)
    if not text.startswith("+") and len(digits) == 12 and my_number.is_valid(digits):
        raise BookingError("my_number_refused", field=field)
    try:
        number = phonenumbers.parse(text, "JP")
    except phonenumbers.NumberParseException as exc:
        raise BookingError("invalid_phone", field=field) from exc
    # Valid exactly when its type is known: phonenumbers' is_valid_number asks the same metadata
    # the same question, so asking for the type alone makes one pass over the patterns, not two.
    kind = phonenumbers.number_type(number)
    if kind == phonenumbers.PhoneNumberType.UNKNOWN:
        raise BookingError("invalid_phone", field=field)
    line_type = _LINE_TYPES.get(kind, "unknown")
    return Phone(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), line_type)


def display_phone(e164: str | None) -> str:
    """A stored number as people write it: 090-1111-2222, 03-5273-4111 for Japanese numbers,
    +1 202-555-0100 for others; anything unreadable as it is."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, "JP")
    except phonenumbers.NumberParseException:
        return e164
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if number.country_code == 81
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return str(phonenumbers.format_number(number, style))


def mask_phone(e164: str) -> str:
    """Show only the last four digits, as agents and residents see it on screen."""
    return "*" * max(len(e164) - 4, 0) + e164[-4:]


# --- Names in kana ------------------------------------------------------------------------

_KANA_NAME = re.compile(r"^[\u30a0-\u30ff ・\-'.]+$")
_KANA_OR_LATIN_NAME = re.compile(r"^[\u30a0-\u30ffA-Za-z ・\-'.]+$")


def normalise_name_kana(raw: str, field: str = "name_kana", *, latin: bool = True) -> str:
    """Katakana (hiragana and half-width kana converted, spaces made one plain space); with
    ``latin``, Latin letters too, kept as given, for names registered so."""
    refuse_my_number(field, raw)
    text = unicodedata.normalize("NFKC", raw).strip()
    # Hiragana to katakana: the blocks are 0x60 apart.
    text = "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in text)
    text = re.sub(r"[\s\u3000]+", " ", text)
    allowed = _KANA_OR_LATIN_NAME if latin else _KANA_NAME
    has_letter = re.search(r"[\u30a1-\u30faA-Za-z]", text)
    if not has_letter or len(text) > 60 or not allowed.match(text):
        raise BookingError("invalid_name_kana", field=field)
    return text


# --- Notice numbers (交付通知書番号) --------------------------------------------------------

_NOTICE = re.compile(r"^([0-9A-Z]{3})-?([0-9]{6})$")


def normalise_notice_number(raw: str, field: str = "notice_number") -> str:
    """Three letters or digits, a hyphen, six digits; full-width and lower case accepted."""
    refuse_my_number(field, raw)
    text = unicodedata.normalize("NFKC", raw).strip().upper().replace(" ", "")
    text = text.replace("\u2212", "-").replace("\u30fc", "-")
    match = _NOTICE.match(text)
    if not match:
        raise BookingError("invalid_notice_number", field=field)
    return f"{match.group(1)}-{match.group(2)}"


def check_birth_date(value: date, today: date, field: str = "birth_date") -> date:
    if value > today or value.year < 1900:
        raise BookingError("invalid_birth_date", field=field)
    return value


# --- A resident's whole input, sealed for storage -------------------------------------


@dataclass(frozen=True)
class Sealed:
    """A resident's validated input, encrypted for storage."""

    name_kana_enc: str | None
    phone_enc: str
    phone_hmac: str
    phone_line_type: str
    birth_date_enc: str
    language: str
    members: list[tuple[int, str | None, str | None, bool, bool]]
    fingerprint: str  # keyed hash of the whole request, for idempotency
    # The validated plain values, to answer the caller without reading the rows back.
    name_kana: str | None
    phone: str
    birth_date: date
    member_views: list[MemberView]

    def columns(self) -> dict[str, str | None]:
        """The resident's sealed columns, as a booking and a lottery application store them."""
        return {
            "language": self.language,
            "name_kana_enc": self.name_kana_enc,
            "phone_enc": self.phone_enc,
            "phone_hmac": self.phone_hmac,
            "phone_line_type": self.phone_line_type,
            "birth_date_enc": self.birth_date_enc,
        }

    def member_rows(self) -> list[dict[str, object]]:
        """Each member's sealed columns, as a booking's or an application's member rows."""
        return [
            {
                "position": pos,
                "notice_number_enc": enc,
                "notice_number_hmac": digest,
                "braille": braille,
                "e_certificate": ecert,
            }
            for pos, enc, digest, braille, ecert in self.members
        ]

    def notice_digests(self) -> list[str | None]:
        """The members' keyed notice-number hashes (None where a member has none)."""
        return [member[2] for member in self.members]


def check_members(requires_notice: bool, party: int, members: list[MemberInput]) -> None:
    """A service that needs notice numbers needs one for every person in the party."""
    if len(members) > party or (requires_notice and len(members) != party):
        raise BookingError("members_mismatch", field="members", party=party)
    if requires_notice:
        for i, member in enumerate(members):
            if not member.notice_number:
                raise BookingError("invalid_notice_number", field=f"members[{i}].notice_number")


_T = TypeVar("_T")


@dataclass(frozen=True)
class Checked:
    """A resident's input, every field valid and in its stored form."""

    name: str | None
    phone: Phone
    birth: date
    notices: list[str | None]


def _notices(
    requires_notice: bool, party: int, members: list[MemberInput], problems: dict[str, BookingError]
) -> list[str | None]:
    """Each member's notice number in its stored form; each one's problem into ``problems``."""
    if len(members) > party or (requires_notice and len(members) != party):
        problems["members"] = BookingError("members_mismatch", field="members", party=party)
        return []
    notices: list[str | None] = []
    for i, member in enumerate(members):
        field = f"members[{i}].notice_number"
        notice = None
        try:
            if member.notice_number:
                notice = normalise_notice_number(member.notice_number, field)
                if notice in notices:
                    raise BookingError("duplicate_notice_number", field=field)
            elif requires_notice:
                raise BookingError("invalid_notice_number", field=field)
        except BookingError as error:
            problems[field] = error
        notices.append(notice)
    return notices


def resident_problems(
    today: date, requires_notice: bool | None, party: int, resident: ResidentInput
) -> tuple[Checked | None, dict[str, BookingError]]:
    """Check every field, not only up to the first mistake: the checked input, or each field's
    problem (in the order the fields are asked). ``requires_notice`` None: not known yet."""
    problems: dict[str, BookingError] = {}

    def check(field: str, step: Callable[[], _T]) -> _T | None:
        try:
            return step()
        except BookingError as error:
            problems[error.field or field] = error
            return None

    name = None
    if resident.name_kana is not None:
        name = check("name_kana", lambda: normalise_name_kana(str(resident.name_kana)))
    phone = check("phone", lambda: parse_phone(resident.phone))
    birth = check("birth_date", lambda: check_birth_date(resident.birth_date, today))
    if resident.language not in LANGUAGES:
        problems["language"] = BookingError("invalid_language", field="language")
    notices = _notices(bool(requires_notice), party, resident.members, problems)
    if problems or phone is None or birth is None:
        return None, problems
    return Checked(name, phone, birth, notices), {}


def check_resident(
    today: date, requires_notice: bool | None, party: int, resident: ResidentInput
) -> Checked:
    """The checked input; FieldProblems naming every field that is wrong."""
    checked, problems = resident_problems(today, requires_notice, party, resident)
    if checked is None:
        raise FieldProblems(problems)
    return checked


def seal(
    vault: Vault,
    today: date,
    requires_notice: bool | None,
    party: int,
    resident: ResidentInput,
    extra: dict[str, Any],
) -> Sealed:
    """Validate and encrypt. ``requires_notice`` None: not known yet (the PostgreSQL booking
    statement checks it in the database)."""
    checked = check_resident(today, requires_notice, party, resident)
    name, phone, birth = checked.name, checked.phone, checked.birth
    members: list[tuple[int, str | None, str | None, bool, bool]] = []
    member_views: list[MemberView] = []
    for i, (member, notice) in enumerate(zip(resident.members, checked.notices, strict=True)):
        member_views.append(MemberView(i, notice, member.braille, member.e_certificate))
        members.append(
            (
                i,
                vault.encrypt(notice) if notice else None,
                vault.digest(notice) if notice else None,
                member.braille,
                member.e_certificate,
            )
        )
    canonical = json.dumps(
        {
            "party": party,
            "name": name,
            "phone": phone.e164,
            "birth": birth.isoformat(),
            "language": resident.language,
            "members": [[m[2], m[3], m[4]] for m in members],
            **extra,
        },
        sort_keys=True,
    )
    return Sealed(
        name_kana_enc=None if name is None else vault.encrypt(name),
        phone_enc=vault.encrypt(phone.e164),
        phone_hmac=vault.digest(phone.e164),
        phone_line_type=phone.line_type,
        birth_date_enc=vault.encrypt(birth.isoformat()),
        language=resident.language,
        members=members,
        fingerprint=vault.digest(canonical),
        name_kana=name,
        phone=phone.e164,
        birth_date=birth,
        member_views=member_views,
    )
