"""Dependencies point one way (DESIGN.md, issue 17). Every import counts, those inside functions
too (the whole syntax tree is walked):

- ``inventory`` imports nothing of ``pos`` or ``kiosks``;
- ``kiosks`` may use only the platform, the accounts and the sales service of ``pos``
  (``pos.core``, ``pos.accounts``, ``pos.sales``), and ``pos.models``, the tables they share;
- only the app factory, the CLI (``cli``, ``cli_site``), the schema, the migrations, the demo and the reports see
  ``kiosks``;
- the platform (``pos.core``) uses no hall, group, report or demo code.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

KIOSKS_MAY_USE = ("pos.core", "pos.accounts", "pos.sales", "pos.models")
SEE_KIOSKS = ("pos/__init__.py", "pos/cli.py", "pos/cli_site.py", "pos/schema.py", "pos/migrate.py", "pos/migrations/", "pos/demo/",
              "pos/reports/")
CORE_MAY_NOT_USE = ("pos.hall", "pos.group", "pos.reports", "pos.demo", "pos.sales")
# pos.payments (issue 15): the providers' adapters and the fake gateway use the platform and the
# shared tables only; the sales service, the hall, the reports and the CLI (and the app factory,
# schema, migrations and demo that wire everything) use them.
PAYMENTS_MAY_USE = ("inventory", "pos.core", "pos.accounts", "pos.models", "pos.payments")
SEE_PAYMENTS = ("pos/payments/", "pos/sales/", "pos/hall/", "pos/reports/", "pos/cli.py", "pos/cli_", "pos/__init__.py",
                "pos/schema.py", "pos/migrate.py", "pos/migrations/", "pos/demo/")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            # "from pos import sales" imports pos.sales
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", sources("inventory"), ids=rel)
def test_inventory_imports_neither_pos_nor_kiosks(path):
    assert not {n for n in imported_modules(path) if under(n, ("pos", "kiosks"))}


@pytest.mark.parametrize("path", sources("kiosks"), ids=rel)
def test_kiosks_use_only_the_platform_accounts_and_sales_of_pos(path):
    used = {n for n in imported_modules(path) if under(n, ("pos",)) and n != "pos"}
    assert {n for n in used if not under(n, KIOSKS_MAY_USE)} == set()


@pytest.mark.parametrize("path", sources("pos"), ids=rel)
def test_only_the_factory_cli_schema_migrations_demo_and_reports_see_kiosks(path):
    if rel(path).startswith(SEE_KIOSKS):
        return
    assert not {n for n in imported_modules(path) if under(n, ("kiosks",))}


@pytest.mark.parametrize("path", sources("pos/core"), ids=rel)
def test_the_platform_uses_no_domain_code(path):
    assert not {n for n in imported_modules(path) if under(n, CORE_MAY_NOT_USE)}


@pytest.mark.parametrize("path", sources("pos/payments"), ids=rel)
def test_payments_use_only_the_platform_accounts_inventory_and_the_shared_tables(path):
    used = {n for n in imported_modules(path) if under(n, ("pos", "kiosks", "inventory")) and n != "pos"}
    assert {n for n in used if not under(n, PAYMENTS_MAY_USE)} == set()


@pytest.mark.parametrize("path", sources("pos"), ids=rel)
def test_only_sales_hall_reports_and_the_cli_see_payments(path):
    if rel(path).startswith(SEE_PAYMENTS):
        return
    assert not {n for n in imported_modules(path) if under(n, ("pos.payments",))}


def test_the_table_sees_an_import_inside_a_function(tmp_path):
    """The check reads imports anywhere in a module, not only at its top."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from kiosks.models import Kiosk\n    import pos.hall.api\n", encoding="utf-8")
    assert {"kiosks.models", "pos.hall.api"} <= imported_modules(module)


def test_pos_has_few_modules_at_its_top():
    top = sorted(p.name for p in (ROOT / "pos").glob("*.py"))
    assert len(top) <= 10, top
