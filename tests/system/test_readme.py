"""The README's two commands are what CI runs."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _readme_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)\n```", text, re.S)
    return blocks[0].strip(), blocks[1].strip()


def test_readme_starts_with_demo_and_test_commands():
    demo, tests = _readme_commands()
    assert demo.endswith("songtao demo")
    assert "pip install -e" in demo and "pytest" in tests


def test_ci_installs_and_tests_as_the_readme_says():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    _, tests = _readme_commands()
    install, _, test_cmd = tests.rpartition(" && ")
    for part in install.split(" && "):
        part = part.replace("python3 -m venv .venv", "python3 -m venv .venv").strip()
        if part.startswith("pip install"):
            assert part.replace("pip install", "pip install -q") in ci, part
        else:
            assert part.split()[0] in ci, part
    assert f"\n{test_cmd}\n" in ci
    assert f'TEST_DATABASE_URL="$PG_URL" {test_cmd}' in ci
