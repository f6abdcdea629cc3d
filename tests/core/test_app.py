"""The application factory: configuration, the secret key, SQLite pragmas, sessions per request."""
import pytest
from sqlalchemy import select, text

from pos import create_app
from pos.core.db import get_session, normalise_url


def test_secret_key_is_generated_once_and_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("SONGTAO_INSTANCE", str(tmp_path))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    first = create_app().config["SECRET_KEY"]
    second = create_app().config["SECRET_KEY"]
    assert first == second and len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0  # readable by the owner only
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    assert create_app().config["SECRET_KEY"] == "from-the-environment"


def test_default_database_is_sqlite_in_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SONGTAO_INSTANCE", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SECRET_KEY", "k")
    assert create_app().config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'songtao.sqlite3'}"


def test_postgres_urls_use_psycopg3():
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x") == "sqlite:///x"


def test_sqlite_runs_in_wal_mode_with_foreign_keys(app):
    if not app.config["DATABASE_URL"].startswith("sqlite"):
        pytest.skip("SQLite pragmas; this run is on PostgreSQL")
    with app.app_context():
        s = get_session()
        assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_session_is_committed_on_success_and_rolled_back_on_error(fresh_app):
    app = fresh_app
    from inventory.models import Category

    @app.route("/_test/ok")
    def _ok():
        get_session().add(Category(name="茶叶"))
        return "ok"

    @app.route("/_test/fail")
    def _fail():
        get_session().add(Category(name="蜂蜜"))
        return "bad", 400

    client = app.test_client()
    assert client.get("/_test/ok").status_code == 200
    assert client.get("/_test/fail").status_code == 400
    s = app.extensions["songtao.sessionmaker"]()
    names = set(s.scalars(select(Category.name)))
    s.close()
    assert names == {"茶叶"}


def test_unknown_page_is_a_chinese_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "页面不存在" in response.get_data(as_text=True)
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and "error" in api.get_json()
