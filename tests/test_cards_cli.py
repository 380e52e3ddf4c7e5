"""`madoguchi cards import`: the ward's CSV of cards that have arrived, from the command line."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from config.cli import main


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    where = tmp_path / "var"
    for name in ("MADOGUCHI_DATABASE_URL", "MADOGUCHI_DATA_KEYS", "MADOGUCHI_LOOKUP_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MADOGUCHI_DATA_DIR", str(where))
    assert main(["db", "upgrade"]) == 0
    assert main(["sample", "load"]) == 0
    return where


def rows(data_dir: Path, query: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(data_dir / "madoguchi.db")) as conn:
        return list(conn.execute(query))


def test_the_help_teaches_the_file_and_the_modes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["cards", "import", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: madoguchi cards import")
    for word in (
        "交付通知書番号,交付場所",
        "Shift_JIS",
        "MADOGUCHI_READY_CARDS",
        "refuse",
        "--check",
    ):
        assert word in out


def test_a_file_is_imported_as_hashes_with_an_audit_entry(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = "交付通知書番号,交付場所\nAB1-234567,main\nab1-234568,四谷特別出張所\nAB1-234569,main\n"
    csv_file = tmp_path / "arrived.csv"
    csv_file.write_bytes(body.encode("cp932"))
    capsys.readouterr()
    assert main(["cards", "import", str(csv_file)]) == 0
    out = capsys.readouterr()
    assert "Imported 3 cards (main 2, yotsuya 1)" in out.out
    assert "importing" in out.err  # the progress bar
    stored = rows(data_dir, "SELECT notice_number_hmac, venue_id FROM ready_card")
    assert sorted(str(v) for _h, v in stored) == ["main", "main", "yotsuya"]
    assert all(len(str(h)) == 64 and "234567" not in str(h) for h, _v in stored)
    dump = (data_dir / "madoguchi.db").read_bytes()
    assert b"AB1-23456" not in dump and b"AB1234567" not in dump
    digest = hashlib.sha256(csv_file.read_bytes()).hexdigest()
    audited = rows(data_dir, "SELECT action, login_id, detail, client FROM audit_event")
    action, login, detail, client = audited[-1]
    assert (action, client) == ("cards.import", "cli")
    assert str(login).startswith("cli:")
    assert detail == f"sha256={digest} rows=3 venues=main:2,yotsuya:1"

    assert main(["cards", "list"]) == 0
    listed = capsys.readouterr().out
    assert "main\t" in listed and "合計 total: 3" in listed


def test_a_file_with_bad_lines_imports_nothing(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = "交付通知書番号,交付場所\nAB1-234567,main\nAB1-2345,main\nAB1-234570,nowhere\n"
    csv_file = tmp_path / "arrived.csv"
    csv_file.write_text(body, encoding="utf-8")
    capsys.readouterr()
    assert main(["cards", "import", str(csv_file), "--check"]) == 1
    assert main(["cards", "import", str(csv_file)]) == 1
    err = capsys.readouterr().err
    assert "3行目 line 3" in err and "4行目 line 4" in err and "Nothing was imported" in err
    assert "2行目" not in err
    assert rows(data_dir, "SELECT count(*) FROM ready_card") == [(0,)]
    assert rows(data_dir, "SELECT count(*) FROM audit_event WHERE action = 'cards.import'") == [
        (0,)
    ]
    assert main(["cards", "import", str(tmp_path / "missing.csv")]) == 2
