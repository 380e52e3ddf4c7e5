"""`madoguchi line setup`: the rich menu made through the fake Messaging API, its picture
uploaded, set as the default; its tiles send what the chat answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from config import cli
from config.doctor import check_line
from config.settings import Settings
from ivr.fake_line import FakeLine
from ivr.line_menu import HEIGHT, WIDTH, menu_picture, rich_menu

TOKEN = "setup-token"  # noqa: S105


@pytest.fixture
def fake() -> Iterator[FakeLine]:
    started = FakeLine(access_token=TOKEN).start()
    yield started
    started.stop()


@pytest.fixture
def line_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake: FakeLine) -> None:
    monkeypatch.setenv("MADOGUCHI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MADOGUCHI_LINE_CHANNEL_SECRET", "s" * 32)
    monkeypatch.setenv("MADOGUCHI_LINE_CHANNEL_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("MADOGUCHI_LINE_API_BASE", fake.base_url)


@pytest.mark.usefixtures("line_env")
def test_setup_makes_the_rich_menu_and_sets_it_as_default(
    fake: FakeLine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["line", "setup"]) == 0
    (menu_id,) = fake.rich_menus
    assert fake.default_menu == menu_id
    assert fake.images[menu_id].startswith(b"\x89PNG")
    labels = [a["action"]["label"] for a in fake.rich_menus[menu_id]["areas"]]
    assert labels == ["予約する", "予約の確認", "よくある質問", "窓口の混雑"]
    assert menu_id in capsys.readouterr().out


@pytest.mark.usefixtures("line_env")
def test_setup_uploads_the_wards_own_picture(fake: FakeLine, tmp_path: Path) -> None:
    picture = tmp_path / "menu.png"
    picture.write_bytes(menu_picture("en"))
    assert cli.main(["line", "setup", "--image", str(picture), "--language", "en"]) == 0
    (menu_id,) = fake.rich_menus
    assert fake.images[menu_id] == picture.read_bytes()


def test_setup_says_how_to_turn_the_channel_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MADOGUCHI_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MADOGUCHI_LINE_CHANNEL_SECRET", raising=False)
    monkeypatch.delenv("MADOGUCHI_LINE_CHANNEL_ACCESS_TOKEN", raising=False)
    assert cli.main(["line", "setup"]) == 2
    assert "MADOGUCHI_LINE_CHANNEL_SECRET" in capsys.readouterr().out


def test_help_teaches_the_console_steps(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["line", "--help"])
    shown = capsys.readouterr().out
    assert "/line/webhook" in shown and "auto-reply" in shown


def test_the_tiles_send_what_the_chat_answers() -> None:
    menu = rich_menu()
    assert menu["size"] == {"width": WIDTH, "height": HEIGHT}
    actions = [parse_qs(a["action"]["data"])["a"][0] for a in menu["areas"]]
    assert actions == ["book", "check", "faq", "crowd"]
    assert sum(a["bounds"]["width"] for a in menu["areas"]) == WIDTH


def test_the_secret_and_the_token_go_together(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="set both, or neither"):
        Settings(data_dir=tmp_path, line_channel_secret="s" * 32)
    assert not Settings(data_dir=tmp_path).line_enabled


def test_the_check_says_whether_line_is_on_and_reachable(tmp_path: Path) -> None:
    assert check_line(Settings(data_dir=tmp_path)).summary == "off"

    def on(url: str) -> Settings:
        return Settings(
            data_dir=tmp_path,
            public_base_url=url,
            line_channel_secret="s" * 32,
            line_channel_access_token=TOKEN,
        )

    assert check_line(on("http://10.0.0.5")).status == "error"
    found = check_line(on("https://yoyaku.example.jp"))
    assert found.status == "ok" and "https://yoyaku.example.jp/line/webhook" in found.message
