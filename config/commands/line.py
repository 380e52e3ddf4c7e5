"""`madoguchi line setup`: the LINE Official Account's rich menu, made through the Messaging
API and set as every user's default."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from config.commands.common import AddCommand
from config.settings import Settings

LINE_EPILOG = """\
Before this, in the LINE Developers console (https://developers.line.biz/console/):
  1. a Messaging API channel for the ward's LINE Official Account;
  2. its channel secret (Basic settings) and a long-lived channel access token (Messaging API)
     into the service's environment, then restart it:
       MADOGUCHI_LINE_CHANNEL_SECRET=...
       MADOGUCHI_LINE_CHANNEL_ACCESS_TOKEN=...
  3. Webhook URL: https://<the service's public address>/line/webhook, "Use webhook" on,
     then "Verify" (it must answer 200);
  4. in the LINE Official Account Manager: auto-reply messages and greeting messages off
     (the service answers every message itself).

examples:
  madoguchi line setup                 the rich menu (予約する・予約の確認・よくある質問・
                                       窓口の混雑) with a plain picture, set as the default
  madoguchi line setup --image menu.png   with the ward's own picture (PNG or JPEG,
                                       2500x843, the four tiles left to right in that order)
  madoguchi line setup --language en   the tiles' words in English
  madoguchi line setup --print         only print the menu's definition (nothing is sent)

Without Pillow installed the picture is four plain coloured tiles with no words: upload a
designed one with --image (the tiles still work; the words are only on the picture)."""


def cmd_line(args: argparse.Namespace, settings: Settings) -> int:
    from config.worker import line_api
    from ivr.line_api import LineError
    from ivr.line_menu import menu_picture, rich_menu

    menu = rich_menu(args.language)
    if args.print:
        print(json.dumps(menu, ensure_ascii=False, indent=2))
        return 0
    api = line_api(settings)
    if api is None or not settings.line_enabled:
        print(
            "The LINE channel is off: set MADOGUCHI_LINE_CHANNEL_SECRET and "
            "MADOGUCHI_LINE_CHANNEL_ACCESS_TOKEN (see `madoguchi line setup --help`)."
        )
        return 2
    picture = Path(args.image).read_bytes() if args.image else menu_picture(args.language)
    try:
        menu_id = api.create_rich_menu(menu)
        api.upload_rich_menu_image(menu_id, picture)
        api.set_default_rich_menu(menu_id)
    except LineError as error:
        print(f"LINE refused: {error}")
        return 1
    print(f"Rich menu {menu_id} made and set as every user's default.")
    return 0


def add_line(add: AddCommand) -> None:
    line = add(
        "line",
        cmd_line,
        "The LINE Official Account channel: set up its rich menu.",
        LINE_EPILOG,
    )
    line.add_argument("action", choices=["setup"], help="setup: make and set the rich menu")
    line.add_argument("--image", metavar="PNG", help="the ward's own picture for the menu")
    line.add_argument(
        "--language", choices=["ja", "en", "ko"], default="ja", help="the tiles' words"
    )
    line.add_argument(
        "--print", action="store_true", help="print the menu's definition; send nothing"
    )
