"""`nnpipe tune --storage sqlite:///FILE` never writes a study into a file that holds something
else: the user's own database or a file that is no database at all is refused (exit 2, one
line naming it) and left byte for byte as it was; a study database is continued."""

from __future__ import annotations

import sqlite3

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import UserError
from pipeline.tune.foreign import refuse_foreign_storage, sqlite_path

pytest.importorskip("optuna")
cli = CliRunner()


def tune(tiny, tmp_path, url, trials="1"):
    return cli.invoke(app, ["tune", str(tiny), "--param", "mlp_train.dropout=float(0,0.5)",
                            "--trials", trials, "--out", str(tmp_path / "t"), "--storage", url])


def users_database(path):
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    connection.execute("INSERT INTO invoices (total) VALUES (12.5)")
    connection.commit()
    connection.close()


@pytest.mark.parametrize("url, path", [
    ("sqlite:///rel/study.db", "rel/study.db"),
    ("sqlite:////abs/study.db", "/abs/study.db"),
    ("sqlite+pysqlite:////abs/s.db?timeout=5", "/abs/s.db"),
    ("sqlite://", None), ("sqlite:///:memory:", None), ("postgresql://host/db", None),
])
def test_the_file_an_sqlite_url_names(url, path):
    found = sqlite_path(url)
    assert (None if found is None else str(found)) == path


def test_the_users_own_database_is_refused_and_kept(tiny, tmp_path):
    mine = tmp_path / "accounts.db"
    users_database(mine)
    before = mine.read_bytes()
    result = tune(tiny, tmp_path, f"sqlite:///{mine}")
    assert result.exit_code == 2, result.output
    assert "accounts.db" in result.output and "invoices" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert mine.read_bytes() == before


def test_a_file_that_is_no_database_is_refused_and_kept(tiny, tmp_path):
    notes = tmp_path / "notes.db"
    notes.write_text("these are my notes, not a database\n" * 50)
    result = tune(tiny, tmp_path, f"sqlite:///{notes}")
    assert result.exit_code == 2, result.output
    assert "notes.db" in result.output and "not an SQLite database" in result.output
    assert notes.read_text() == "these are my notes, not a database\n" * 50


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(UserError, match="is not a file"):
        refuse_foreign_storage(f"sqlite:///{tmp_path}")


def test_a_new_file_an_empty_one_and_a_study_database_are_used(tiny, tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    refuse_foreign_storage(f"sqlite:///{empty}")  # nothing in it to lose
    refuse_foreign_storage(f"sqlite:///{tmp_path / 'new.db'}")
    shared = tmp_path / "shared.db"
    assert tune(tiny, tmp_path, f"sqlite:///{shared}").exit_code == 0
    refuse_foreign_storage(f"sqlite:///{shared}")  # Optuna's tables: a study database
    again = tune(tiny, tmp_path, f"sqlite:///{shared}", trials="2")
    assert again.exit_code == 0, again.output
