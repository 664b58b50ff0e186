"""The layering of ARCHITECTURE.md section 1, checked by walking every module's imports (AST).

- ca_core imports nothing from protocols or gateway.
- protocols/<x> imports neither gateway nor another protocol (protocols._shared is shared;
  intune may import scep, being SCEP plus Intune validation).
- protocols/_shared imports no protocol and not gateway.
Imports anywhere in a module count (inside functions and TYPE_CHECKING blocks too);
relative imports are resolved against the importing module's package.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALLOWED_PROTOCOL_IMPORTS = {("intune", "scep")}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(root: Path, path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) for every import statement in the file."""
    name = module_name(root, path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text("utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield node.lineno, target
            # `from protocols import scep` names a package through the imported name.
            for alias in node.names:
                yield node.lineno, f"{target}.{alias.name}"


def violations(root: Path) -> list[str]:
    found = []
    for package in ("ca_core", "protocols"):
        for path in sorted((root / package).rglob("*.py")):
            if ".venv" in path.parts:
                continue
            source = module_name(root, path)
            parts = source.split(".")
            reported: set[int] = set()  # one finding per import statement
            for line, target in imports_of(root, path):
                if line in reported:
                    continue
                head = target.split(".")
                where = f"{path.relative_to(root)}:{line} imports {target}"
                problem = _problem(package, parts, head)
                if problem:
                    reported.add(line)
                    found.append(f"{where} ({problem})")
    return sorted(found)


def _problem(package: str, importer: list[str], target: list[str]) -> str | None:
    if package == "ca_core":
        if target[0] in ("protocols", "gateway"):
            return "ca_core imports nothing from protocols or gateway"
        return None
    if target[0] == "gateway":
        return "a protocol never imports gateway"
    if target[0] != "protocols" or len(target) < 2 or len(importer) < 2:
        return None
    mine, theirs = importer[1], target[1]
    if theirs in (mine, "_shared") or (mine, theirs) in ALLOWED_PROTOCOL_IMPORTS:
        return None
    return "a protocol never imports another protocol"


def test_the_code_follows_the_layering() -> None:
    assert violations(ROOT) == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("ca_core/bad.py", "from gateway.app import create_app\n", "ca_core imports nothing"),
        ("ca_core/sub/bad.py", "def f():\n    import protocols.acme\n", "ca_core imports nothing"),
        ("protocols/acme/bad.py", "from protocols.est import codec\n", "another protocol"),
        ("protocols/acme/bad.py", "from ..est import codec\n", "another protocol"),
        ("protocols/acme/bad.py", "from protocols import scep\n", "another protocol"),
        ("protocols/est/bad.py", "from gateway import cli\n", "never imports gateway"),
        ("protocols/_shared/bad.py", "from protocols.cmp.core import x\n", "another protocol"),
        ("protocols/scep/bad.py", "from protocols.intune import core\n", "another protocol"),
    ],
)
def test_a_wrong_way_import_is_found(tmp_path: Path, module: str, source: str, expected: str) -> None:
    for package in ("ca_core", "protocols", "protocols/acme", "protocols/est", "protocols/_shared"):
        (tmp_path / package).mkdir(parents=True, exist_ok=True)
        (tmp_path / package / "__init__.py").write_text("")
    path = tmp_path / module
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    found = violations(tmp_path)
    assert len(found) == 1 and expected in found[0], found


@pytest.mark.parametrize(
    "source",
    [
        "from protocols.scep import codec\n",
        "from ..scep.core import x\n",
        "from protocols._shared import cms\n",
        "from . import core\n",
        "from ca_core.model import IssuanceRequest\n",
    ],
)
def test_allowed_imports_pass(tmp_path: Path, source: str) -> None:
    (tmp_path / "protocols" / "intune").mkdir(parents=True)
    (tmp_path / "protocols" / "intune" / "routes.py").write_text(source)
    assert violations(tmp_path) == []
