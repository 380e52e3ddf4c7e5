"""Dates, times and numbers as a voice should say them, not as digits on a screen.

Japanese: 12月16日 水曜日 午前8時30分; a booking code one digit at a time in words, so the
voice cannot read 2953 as "two thousand nine hundred...". English: Wednesday, December 16,
at 8:30 AM. Korean: 12월 16일 수요일 오전 8시 30분. Chinese: 12月16日 星期三 上午8点30分
(weekday names from Babel's zh_Hans_CN). やさしい日本語 is said as Japanese is.
"""

from __future__ import annotations

from datetime import date, datetime

import phonenumbers
from babel import Locale

from booking.context import TOKYO
from booking.languages import info

# Languages said as another is: やさしい日本語's dates and digits are Japanese ones.
SPOKEN_AS = {"easy": "ja"}

WEEKDAYS_JA = ("月曜日", "火曜日", "水曜日", "木曜日", "金曜日", "土曜日", "日曜日")
WEEKDAYS_KO = ("월요일", "화요일", "수요일", "목요일", "금요일", "토요일", "일요일")
WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
# Digits as words: "ゼロ" and "よん"/"なな" are the forms used on the phone, where "し" and
# "しち" are easily misheard.
DIGITS_JA = ("ゼロ", "いち", "に", "さん", "よん", "ご", "ろく", "なな", "はち", "きゅう")
# Sino-Korean digits, 0 as 공 as on the phone.
DIGITS_KO = ("공", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구")
# Mandarin digits one by one, as a number is read out on the phone.
DIGITS_ZH = ("零", "一", "二", "三", "四", "五", "六", "七", "八", "九")
# 星期一 ... 星期日, Monday first (Babel's wide weekday names for zh_Hans_CN).
WEEKDAYS_ZH = tuple(Locale.parse(info("zh").babel).days["format"]["wide"][i] for i in range(7))
DIGITS_EN = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _as(language: str) -> str:
    return SPOKEN_AS.get(language, language)


def say_date(day: date, language: str) -> str:
    language = _as(language)
    if language == "zh":
        return f"{day.month}月{day.day}日 {WEEKDAYS_ZH[day.weekday()]}"
    if language == "ja":
        return f"{day.month}月{day.day}日 {WEEKDAYS_JA[day.weekday()]}"
    if language == "ko":
        return f"{day.month}월 {day.day}일 {WEEKDAYS_KO[day.weekday()]}"
    return f"{WEEKDAYS_EN[day.weekday()]}, {MONTHS_EN[day.month - 1]} {day.day}"


def say_clock(at: datetime, language: str) -> str:
    """A time of day in Tokyo: 午前8時30分, 午後1時, 正午; 8:30 AM, 1 PM, noon."""
    local = at.astimezone(TOKYO)
    hour, minute = local.hour, local.minute
    language = _as(language)
    if language == "zh":
        half = "上午" if hour < 12 else "中午" if hour == 12 else "下午"
        shown = hour if hour <= 12 else hour - 12
        return f"{half}{shown}点" + (f"{minute:02d}分" if minute else "")
    if language == "ko":
        if (hour, minute) == (12, 0):
            return "정오"
        half = "오전" if hour < 12 else "오후"
        shown = hour if hour <= 12 else hour - 12
        return f"{half} {shown}시" + (f" {minute}분" if minute else "")
    if language == "ja":
        if (hour, minute) == (12, 0):
            return "正午"
        half = "午前" if hour < 12 else "午後"
        shown = hour if hour <= 12 else hour - 12
        return f"{half}{shown}時" + (f"{minute}分" if minute else "")
    if (hour, minute) == (12, 0):
        return "noon"
    suffix = "AM" if hour < 12 else "PM"
    shown = hour % 12 or 12
    return f"{shown}:{minute:02d} {suffix}" if minute else f"{shown} {suffix}"


def say_when(at: datetime, language: str) -> str:
    """A visit's start: 12月16日 水曜日 午前8時30分 / Wednesday, December 16, at 8:30 AM."""
    day = at.astimezone(TOKYO).date()
    if _as(language) in ("ja", "ko", "zh"):
        return f"{say_date(day, language)} {say_clock(at, language)}"
    return f"{say_date(day, language)}, at {say_clock(at, language)}"


def say_digits(digits: str, language: str, group: int = 0) -> str:
    """One digit at a time, with a pause (a comma) between; a longer pause between groups."""
    language = _as(language)
    words = {"ja": DIGITS_JA, "ko": DIGITS_KO, "zh": DIGITS_ZH}.get(language, DIGITS_EN)
    comma = {"ja": "、", "zh": "，"}.get(language, ", ")
    stop = {"ja": "。", "zh": "。"}.get(language, ". ")
    spoken = [words[int(c)] if c.isdigit() else c for c in digits if not c.isspace()]
    if not group:
        return comma.join(spoken)
    chunks = [spoken[i : i + group] for i in range(0, len(spoken), group)]
    return stop.join(comma.join(chunk) for chunk in chunks)


def say_phone(e164: str, language: str) -> str:
    """A phone number as dialled in Japan (090-1234-5678), digit by digit, grouped."""
    try:
        number = phonenumbers.parse(e164, None)
        national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    except phonenumbers.NumberParseException:
        national = e164
    groups = national.replace("(", " ").replace(")", " ").replace("-", " ").split()
    stop = {"ja": "の、", "ko": "에, ", "zh": "。"}.get(_as(language), ", ")
    return stop.join(say_digits(g, language) for g in groups)


def say_notice(number: str, language: str) -> str:
    """A notice number, letters as letters and digits as words: エー、ビー、いち の ..."""
    head, _, tail = number.partition("-")
    language = _as(language)
    letters = [say_letter(c, language) if c.isalpha() else say_digits(c, language) for c in head]
    comma = {"ja": "、", "zh": "，"}.get(language, ", ")
    dash = {"ja": "、の、", "ko": ", 다시, ", "zh": "，横线，"}.get(language, ", dash, ")
    return comma.join(letters) + dash + say_digits(tail, language)


LETTERS_JA = {
    "A": "エー",
    "B": "ビー",
    "C": "シー",
    "D": "ディー",
    "E": "イー",
    "F": "エフ",
    "G": "ジー",
    "H": "エイチ",
    "I": "アイ",
    "J": "ジェー",
    "K": "ケー",
    "L": "エル",
    "M": "エム",
    "N": "エヌ",
    "O": "オー",
    "P": "ピー",
    "Q": "キュー",
    "R": "アール",
    "S": "エス",
    "T": "ティー",
    "U": "ユー",
    "V": "ブイ",
    "W": "ダブリュー",
    "X": "エックス",
    "Y": "ワイ",
    "Z": "ゼット",
}


def say_letter(letter: str, language: str) -> str:
    if _as(language) == "ja":
        return LETTERS_JA.get(letter.upper(), letter)
    return letter.upper()
