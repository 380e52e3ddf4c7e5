"""The wait estimate's pure core (what the phone line and the benchmark both call), how it is
said, and when the queue offers a callback."""

from __future__ import annotations

from datetime import time

import pytest

from ivr.flow import LineConfig, offers_callback, prompt, wait_estimate_words
from ivr.wait_estimate import Answer, estimate_wait, hour_rate_wait, mean_wait, spoken_minutes

NOW = 10_000.0


def answers(*seconds_ago: float, waited: float = 0.0) -> list[Answer]:
    return [Answer(NOW - ago, waited) for ago in seconds_ago]


def test_too_few_answers_in_the_hour_give_no_estimate() -> None:
    assert estimate_wait(1, [], now=NOW) is None
    assert estimate_wait(1, answers(600, 300), now=NOW) is None
    # Three answers, but one of them over an hour ago: still too few.
    assert estimate_wait(1, answers(3700, 600, 300), now=NOW) is None
    assert estimate_wait(1, answers(900, 600, 300), now=NOW) is not None


def test_the_estimate_is_the_place_times_the_gap_between_answers() -> None:
    # 5 answers, the first 40 minutes ago: 4 gaps in 2,400 s, one answer every 600 s.
    found = answers(2400, 1800, 1200, 600, 60)
    assert estimate_wait(1, found, now=NOW) == pytest.approx(600)
    assert estimate_wait(3, found, now=NOW) == pytest.approx(1800)
    # The answers' order does not matter, nor answers still to come (after now).
    shuffled = [found[2], found[0], found[4], found[1], found[3], Answer(NOW + 50, 0)]
    assert estimate_wait(3, shuffled, now=NOW) == pytest.approx(1800)
    # A place under 1 (Twilio says 1 for the next) counts as the next.
    assert estimate_wait(0, found, now=NOW) == pytest.approx(600)


def test_the_rate_is_measured_since_the_hours_first_answer_not_the_whole_hour() -> None:
    # Booking opened 10 minutes ago: 11 answers, one a minute.
    found = answers(*range(600, -1, -60))
    assert estimate_wait(1, found, now=NOW) == pytest.approx(60)
    assert hour_rate_wait(1, found, now=NOW) == pytest.approx(3600 / 11)


def test_answers_a_moment_apart_are_not_taken_for_a_fast_rate() -> None:
    assert estimate_wait(1, answers(3, 2, 1), now=NOW) == pytest.approx(30)  # 2 in a minute


def test_the_naive_estimate_is_the_mean_wait_whatever_the_place() -> None:
    found = [Answer(NOW - 100, 60), Answer(NOW - 50, 120), Answer(NOW - 10, 300)]
    assert mean_wait(found, now=NOW) == pytest.approx(160)
    assert mean_wait(found[:2], now=NOW) is None


@pytest.mark.parametrize(
    ("seconds", "minutes"),
    [(0, 0), (59, 0), (60, 1), (61, 2), (14 * 60 + 1, 15), (15 * 60 + 1, 20), (3000, 50)],
)
def test_the_estimate_is_said_in_whole_minutes_then_5_minute_steps(
    seconds: float, minutes: int
) -> None:
    assert spoken_minutes(seconds) == minutes


def test_the_words_said_for_an_estimate() -> None:
    assert wait_estimate_words("ja", 30) == prompt("ja", "queue_estimate_soon")
    assert wait_estimate_words("ja", 130) == "あと3分ほどで、おつなぎできる見込みです。"
    assert wait_estimate_words("en", 60) == "We expect to answer in about 1 minute."
    assert wait_estimate_words("en", 3600) == "We expect to answer in about 60 minutes."
    assert wait_estimate_words("ja", 3601) == prompt("ja", "queue_estimate_long")


def test_the_callback_is_offered_past_the_threshold_or_after_waiting_that_long() -> None:
    line = LineConfig(
        public_base_url="https://ivr.example.jp",
        voices={"ja": "Polly.Mizuki"},
        opens=time(8, 30),
        closes=time(17, 15),
        lookups_per_15_minutes=10,
        callback_offer_minutes=5,
    )
    assert not offers_callback(line, 300, waited_seconds=0)
    assert offers_callback(line, 301, waited_seconds=0)
    assert not offers_callback(line, None, waited_seconds=299)
    assert offers_callback(line, None, waited_seconds=300)
    # A short estimate is believed even after a long wait.
    assert not offers_callback(line, 60, waited_seconds=900)
