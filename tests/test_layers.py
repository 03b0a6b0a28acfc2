"""The layering rule of README's Layout section, checked over the import graph: a package may
import only packages of lower layers (and its own modules); nothing imports upwards."""

import ast
from pathlib import Path

import pytest

NAS = Path(__file__).resolve().parents[1] / "nas"

# lowest first; a module may import its own package and anything in an earlier layer
LAYERS = [
    {"nas.errors", "nas._paths", "nas._typecheck", "nas._version"},
    {"nas.space"},
    {"nas.models"},
    {"nas.export"},
    {"nas.data"},
    {"nas.train"},
    {"nas.supernet"},
    {"nas.latency"},
    {"nas.run"},
    {"nas.search"},
    {"nas.winner"},
    {"nas.report"},
    {"nas.api", "nas"},  # the library's entry points; the root package re-exports the stable API
    {"nas.cli"},
    {"nas.__main__"},
]
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def unit_of(module: str) -> str:
    """The layering unit of a dotted module name: its package under nas/, or the module itself."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def module_name(path: Path) -> str:
    rel = path.relative_to(NAS.parent).with_suffix("")
    return ".".join(rel.parts).removesuffix(".__init__")


def imports(path: Path, typing_too: bool = False) -> list[tuple[int, str]]:
    """(line, module) of every import of nas code in a file, at any depth (lazy imports too; not
    the ones under ``if TYPE_CHECKING``)."""
    out = []
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for branch in ast.walk(tree) if isinstance(branch, ast.If)
                   and isinstance(branch.test, ast.Name) and branch.test.id == "TYPE_CHECKING"
                   for stmt in branch.body for n in ast.walk(stmt)}  # annotations only: not an import at run time
    for node in ast.walk(tree):
        if id(node) in typing_only and not typing_too:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "nas" and node.level == 0:
            for a in node.names:  # `from nas import x` may import a submodule: judge the submodule
                full = f"{node.module}.{a.name}"
                out.append((node.lineno, full if node.module == "nas" and unit_of(full) in RANK else node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "nas"]
    return out


def test_every_unit_has_a_layer():
    units = {unit_of(module_name(p)) for p in NAS.rglob("*.py")}
    assert units - set(RANK) == set(), "add the new package to LAYERS (and to README's Layout section)"


def violations() -> list[str]:
    bad = []
    for path in sorted(NAS.rglob("*.py")):
        me = unit_of(module_name(path))
        for line, target in imports(path):
            other = unit_of(target)
            if other != me and RANK[other] >= RANK[me]:
                bad.append(f"{path.relative_to(NAS.parent)}:{line}: {me} (layer {RANK[me]}) imports {target} "
                           f"(layer {RANK[other]})")
    return bad


def test_no_import_goes_up_or_sideways():
    assert violations() == []


def test_the_check_can_fail(tmp_path, monkeypatch):
    """The rule is not vacuous: an upward import written into a low package is caught."""
    fake = tmp_path / "nas"
    (fake / "space").mkdir(parents=True)
    (fake / "space" / "_bad.py").write_text("from nas.search import run_search\n")
    monkeypatch.setattr(__import__(__name__), "NAS", fake)
    assert len(violations()) == 1 and "nas.space (layer 1) imports nas.search" in violations()[0]


@pytest.mark.parametrize("pkg", sorted(u for u in RANK if u.count(".") == 1 and (NAS / u.split(".")[1]).is_dir()))
def test_packages_publish_names(pkg):
    """Each concept package says what it offers in ``__all__``, and every listed name exists."""
    import importlib

    mod = importlib.import_module(pkg)
    assert mod.__all__ and all(hasattr(mod, n) for n in mod.__all__)


def test_at_most_eight_modules_at_the_top():
    assert len([p for p in NAS.glob("*.py")]) <= 8


def test_no_import_cycles_between_modules():
    """Inside a package too (imports inside functions and under ``if TYPE_CHECKING`` count;
    package ``__init__`` files, which only re-export, are left out), as
    ../shared/tools/import_graph.py counts them."""
    mods = {module_name(p): p for p in NAS.rglob("*.py") if p.name != "__init__.py"}
    graph = {m: {t for _, t in imports(p, typing_too=True) if t in mods and t != m} for m, p in mods.items()}
    # a lazy `from nas.pkg import name` resolves to the module that defines it: follow the package's __init__
    for m, p in mods.items():
        for _, t in imports(p):
            init = NAS.parent / (t.replace(".", "/") + "/__init__.py")
            if init.is_file():
                graph[m] |= {u for _, u in imports(init) if u in mods and u != m}
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:  # depth-first: a back edge to a module on the stack is a cycle
        seen[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if seen.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if t not in seen and (cyc := visit(t)):
                return cyc
        seen[m] = 2
        stack.pop()
        return None

    for m in sorted(graph):
        if m not in seen:
            cyc = visit(m)
            assert cyc is None, " -> ".join(cyc)
