"""The architecture as the code has it (docs/architecture.md): a QGIS-free engine, thin hosts that never
import one another, and no import cycles anywhere in landcover_plugin/ (lazy imports inside functions
count too)."""
import ast
from pathlib import Path

from tests.fixtures import REPO

PACKAGE = REPO / "landcover_plugin"
HOSTS = {"cli": ("landcover_plugin.cli", "landcover_plugin.__main__"), "qgis": ("landcover_plugin.qgis_plugin",)}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Module → the landcover_plugin modules (and top-level external packages) it imports."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "resources.py":  # compiled Qt resources
            continue
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)  # `from . import x`
        ours = {m for m in found if m.startswith("landcover_plugin")}
        modules = {m for m in ours if (REPO / Path(*m.split("."))).with_suffix(".py").exists()
                   or (REPO / Path(*m.split(".")) / "__init__.py").exists()}
        graph[name] = modules | (found - ours)
    return graph


def host_of(module: str) -> str | None:
    return next((host for host, prefixes in HOSTS.items() for prefix in prefixes
                 if module == prefix or module.startswith(prefix + ".")), None)


def test_the_engine_imports_no_host_and_no_qgis():
    for module, targets in imports().items():
        if host_of(module) is None and module != "landcover_plugin":  # __init__.classFactory is QGIS' entry point
            assert not [t for t in targets if host_of(t)], f"{module} imports a host"
            assert not [t for t in targets if t.split(".")[0] in ("qgis", "PyQt5")], f"{module} imports QGIS"


def test_no_host_imports_another_host():
    for module, targets in imports().items():
        host = host_of(module)
        if host:
            assert {host_of(t) for t in targets} <= {host, None}, f"{module} ({host}) imports another host"


def test_no_import_cycles():
    graph = {m: {t for t in ts if t.startswith("landcover_plugin")} for m, ts in imports().items()}
    graph = {m: {t for t in ts if t in graph and t != m and t != "landcover_plugin"} for m, ts in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " → ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node)
