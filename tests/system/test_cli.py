"""The `songtao` command: clear one-line errors and non-zero exits for user mistakes."""
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from pos.cli import main
from pos.models import Role, User


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.setenv("SONGTAO_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    return CliRunner()


def _db(tmp_path):
    return f"sqlite:///{tmp_path / 'cli.sqlite3'}"


def _users(url):
    engine = create_engine(url)
    with Session(engine) as s:
        rows = [(u.username, u.role) for u in s.scalars(select(User))]
    engine.dispose()
    return rows


def test_init_db_then_create_user(runner, tmp_path):
    url = _db(tmp_path)
    result = runner.invoke(main, ["init-db"], env={"DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert "最新" in result.output
    result = runner.invoke(main, ["create-user", "mei", "--role", "cashier", "--password", "long-enough-1", "--pin", "2468"],
                           env={"DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert _users(url) == [("mei", Role.CASHIER)]


def test_create_user_prompts_for_password(runner, tmp_path):
    url = _db(tmp_path)
    runner.invoke(main, ["init-db"], env={"DATABASE_URL": url})
    result = runner.invoke(main, ["create-user", "li", "--role", "manager"], env={"DATABASE_URL": url},
                           input="long-enough-2\nlong-enough-2\n")
    assert result.exit_code == 0, result.output
    assert _users(url) == [("li", Role.MANAGER)]


@pytest.mark.parametrize("args, message", [
    (["create-user", "x1", "--role", "boss", "--password", "long-enough-1"], "boss"),
    (["create-user", "x1", "--role", "cashier", "--password", "short"], "密码至少需要"),
    (["create-user", "x 1", "--role", "cashier", "--password", "long-enough-1"], "用户名"),
    (["create-user", "x1", "--role", "cashier", "--password", "long-enough-1", "--pin", "12"], "PIN"),
])
def test_create_user_mistakes_are_one_line_and_change_nothing(runner, tmp_path, args, message):
    url = _db(tmp_path)
    runner.invoke(main, ["init-db"], env={"DATABASE_URL": url})
    result = runner.invoke(main, args, env={"DATABASE_URL": url})
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert _users(url) == []


def test_duplicate_user_refused(runner, tmp_path):
    url = _db(tmp_path)
    runner.invoke(main, ["init-db"], env={"DATABASE_URL": url})
    args = ["create-user", "mei", "--role", "cashier", "--password", "long-enough-1"]
    assert runner.invoke(main, args, env={"DATABASE_URL": url}).exit_code == 0
    result = runner.invoke(main, args, env={"DATABASE_URL": url})
    assert result.exit_code == 1
    assert "已存在" in result.output
    assert len(_users(url)) == 1


def test_commands_refuse_an_unmigrated_database(runner, tmp_path):
    url = _db(tmp_path)
    result = runner.invoke(main, ["create-user", "a1", "--role", "admin", "--password", "long-enough-1"],
                           env={"DATABASE_URL": url})
    assert result.exit_code == 1
    assert "songtao init-db" in result.output
    result = runner.invoke(main, ["serve"], env={"DATABASE_URL": url})
    assert result.exit_code == 1
    assert "songtao init-db" in result.output


def test_unreachable_database_is_one_line(runner):
    url = "postgresql+psycopg://nobody:secret@127.0.0.1:1/nothing"
    result = runner.invoke(main, ["init-db"], env={"DATABASE_URL": url})
    assert result.exit_code == 1
    assert "无法迁移数据库" in result.output
    assert "secret" not in result.output  # the password is not printed
    assert len(result.output.strip().splitlines()) == 1


def test_bad_port_is_refused(runner):
    result = runner.invoke(main, ["serve", "--port", "70000"])
    assert result.exit_code == 2
    assert "70000" in result.output
