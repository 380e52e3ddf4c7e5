"""The wallboard's and the monthly report's figures of text-a-link and the survey: a day of its
own (no other test calls in March 2027), calls through the webhooks, figures by hand."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from fastapi.testclient import TestClient

from agent_console import report
from booking.context import TOKYO
from ivr import service as calls
from ivr.caller import PhoneCall
from tests.agent_console.test_console import Console, console  # noqa: F401 (the fixture)
from tests.ivr.conftest import PUBLIC, TOKEN, new_mobile
from tests.ivr.test_survey import talk_with_an_agent

DAY = date(2027, 3, 10)  # a Wednesday


def test_deflections_and_surveys_on_the_wallboard_and_in_the_report(
    console: Console,  # noqa: F811 (the fixture imported above)
) -> None:
    console.clock.set(datetime(2027, 3, 10, 10, 0, tzinfo=TOKYO))
    with TestClient(console.app) as http:

        def caller() -> PhoneCall:
            return PhoneCall(
                http, public_base_url=PUBLIC, auth_token=TOKEN, from_number=new_mobile()
            )

        deflected = caller()
        deflected.dial()
        deflected.press("4")  # the web booking's link by SMS
        pleased, unsettled, gone = caller(), caller(), caller()
        talk_with_an_agent(console.app_sessions, console.clock, pleased)
        pleased.press("4")
        pleased.press("1")  # settled
        talk_with_an_agent(console.app_sessions, console.clock, unsettled)
        unsettled.press("2")
        unsettled.press("2")  # not settled
        talk_with_an_agent(console.app_sessions, console.clock, gone)
        gone.press("5")
        gone.hang_up()  # before saying whether it was settled
        silent = caller()
        talk_with_an_agent(console.app_sessions, console.clock, silent)
        silent.silence()  # no survey

    with console.app_sessions() as db:
        board = calls.wallboard(db)
    feedback = board.feedback
    assert feedback is not None
    assert feedback.deflected == 1
    agent = feedback.surveys["agent"]
    assert agent.answers == 3
    assert agent.distribution == {1: 0, 2: 1, 3: 0, 4: 1, 5: 1}
    assert agent.mean_score == pytest.approx(11 / 3)
    assert (agent.settled_yes, agent.settled_no) == (1, 1)
    assert agent.settled_share == pytest.approx(0.5)
    assert feedback.surveys["self_service"].answers == 0
    assert feedback.surveys["self_service"].mean_score is None

    supervisor, _ = console.signed_in("supervisor")
    page = supervisor.get("/console/wallboard")
    assert page.status_code == 200
    assert 'id="deflected" style="font-size: 2rem; margin: 0">1<' in page.text
    assert "3.7" in page.text and "回答 3 件・解決 50%" in page.text

    # The month's report: the same figures, and the 1-5 spread, in the page and the CSV.
    with console.app_sessions() as db:
        month = report.monthly_report(db, month=DAY)
    rows = {(section, item): value for section, item, value in report.figures(month)}
    assert rows["deflections", "calls sent the web booking's link"] == "1"
    assert rows["survey agent", "answers"] == "3"
    assert rows["survey agent", "mean score"] == "3.667"
    assert [rows["survey agent", f"score {n}"] for n in range(1, 6)] == ["0", "1", "0", "1", "1"]
    assert rows["survey agent", "share settled"] == "0.500"
    assert rows["survey self_service", "answers"] == "0"
    html = report.render_html(month)
    assert 'id="report-deflected">1<' in html and "3.67" in html
    csv = supervisor.get("/console/reports/monthly.csv?month=2027-03")
    assert csv.status_code == 200
    assert "2027-03,survey agent,mean score,3.667" in csv.text
    assert "2027-03,deflections,calls sent the web booking's link,1" in csv.text
    # The day after: today's wallboard starts again from nothing.
    console.clock.advance(days=1)
    with console.app_sessions() as db:
        tomorrow = calls.wallboard(db).feedback
    assert tomorrow is not None and tomorrow.deflected == 0
    assert tomorrow.surveys["agent"].answers == 0
    console.clock.advance(days=-1)
