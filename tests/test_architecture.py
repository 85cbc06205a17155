"""The dependency rule and no import cycles, read from the source (every import, lazy ones included)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {  # package -> the packages it may import
    "circuits": set(),
    "netlists": {"circuits"},
    "neuromorphic": {"circuits"},
    "cosim": {"circuits", "netlists", "neuromorphic"},  # the one place that joins ngspice and Lava
    "backends": {"circuits", "netlists", "neuromorphic", "cosim"},
    "learning": {"circuits", "backends"},
    "experiments": {"circuits", "netlists", "neuromorphic", "cosim", "backends", "learning"},
}


def imports():
    """{module: set of eqprop modules it imports}, e.g. 'learning.runs' -> {'backends', 'learning.data'}."""
    graph = {}
    for pkg in ALLOWED:
        for path in (ROOT / pkg).rglob("*.py"):  # process folders too (their imports are absolute)
            mod = ".".join((pkg,) + path.relative_to(ROOT / pkg).with_suffix("").parts)
            deps = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom):
                    if node.level:  # relative: inside the package
                        base = pkg + ("." + node.module if node.module else "")
                        names = [base] if node.module else [f"{pkg}.{a.name}" for a in node.names]
                    elif node.module and node.module.startswith("eqprop."):
                        names = [node.module[len("eqprop."):]]
                        if node.module.count(".") == 1:
                            names += [f"{names[0]}.{a.name}" for a in node.names]
                    else:
                        continue
                    deps.update(names)
                elif isinstance(node, ast.Import):
                    deps.update(a.name[len("eqprop."):] for a in node.names if a.name.startswith("eqprop."))
            graph[mod] = deps
    return graph


def test_dependencies_point_one_way():
    bad = []
    for mod, deps in imports().items():
        pkg = mod.split(".")[0]
        for d in deps:
            other = d.split(".")[0]
            if other != pkg and other not in ALLOWED[pkg]:
                bad.append(f"{mod} imports {d}")
    assert not bad, bad


def test_no_import_cycles():
    graph = imports()
    modules = set(graph)
    edges = {m: {d for d in deps if d in modules and d != m} for m, deps in graph.items()}
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = "open"
        for d in edges[m]:
            if state.get(d) == "open":
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d, stack + [d])
        state[m] = "done"

    for m in sorted(modules):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles
