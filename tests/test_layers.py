"""The layer rules that import-linter cannot state (it sees imports, not where they stand).

A first-party import inside a function hides an arrow of the import graph, often a circle. Each
one left must say why, in a comment on its line or just above its block of imports (an import
cycle named, or "only once the app registry is ready" in an AppConfig.ready())."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = {"aiqrecon", "api", "core", "ledger", "payments", "sales", "staff", "sandbox"}


def _first_party(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] in FIRST_PARTY
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] in FIRST_PARTY for alias in node.names)
    return False


def _explained(lines: list[str], lineno: int) -> bool:
    """A comment on the import's line, or above it across imports and blank lines only."""
    if "#" in lines[lineno - 1]:
        return True
    for line in reversed(lines[: lineno - 1]):
        text = line.strip()
        if text.startswith("#"):
            return True
        if text and not text.startswith(("from ", "import ", ")")) and not text.endswith(","):
            return False
    return False


def _silent_local_imports() -> list[str]:
    silent = []
    for package in sorted(FIRST_PARTY):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            text = path.read_text()
            lines = text.splitlines()
            for function in ast.walk(ast.parse(text)):
                if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for node in ast.walk(function):
                    if _first_party(node) and not _explained(lines, node.lineno):
                        silent.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return sorted(set(silent))


def test_no_function_local_first_party_import_goes_unexplained():
    assert _silent_local_imports() == []


def test_the_rule_can_fail(tmp_path):
    """A silent local import is caught; the same import under a comment passes."""
    silent = "def f():\n    x = 1\n    from ledger.models import Invoice\n"
    said = "def f():\n    x = 1\n    # local: ledger.models imports this module\n" + (
        "    from ledger.models import Invoice\n"
    )
    for source, expected in ((silent, False), (said, True)):
        lines = source.splitlines()
        [node] = [n for n in ast.walk(ast.parse(source)) if _first_party(n)]
        assert _explained(lines, node.lineno) is expected
