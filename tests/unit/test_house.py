"""The house rules of issue 14, checked on the source: no import cycle among editkit's modules
(counting imports inside functions too), and no module importing another's private name."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "editkit"


def module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(absolute module, imported names, line) of every editkit import in the file."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] == "editkit":
                out.append((mod, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "editkit"]
    return out


def graph() -> dict[str, set[str]]:
    mods = {module_name(p): p for p in PKG.rglob("*.py")}
    g: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for target, names, _ in imports(p):
            for n in names or [""]:
                sub = f"{target}.{n}" if n else target
                dep = sub if sub in mods else target
                if dep in mods and dep != m and not m.startswith(dep + "."):  # a submodule may use its own package
                    g[m].add(dep)
    return g


def test_no_import_cycle():
    g = graph()
    seen, stack, cycles = set(), [], []

    def visit(m):
        if m in stack:
            cycles.append(stack[stack.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for d in sorted(g[m]):
            visit(d)
        stack.pop()

    for m in sorted(g):
        visit(m)
    assert not cycles, cycles


def test_no_private_name_crosses_modules():
    bad = [f"{p.relative_to(PKG.parent)}:{line} imports {n} from {mod}"
           for p in PKG.rglob("*.py") for mod, names, line in imports(p) for n in names if n.startswith("_")]
    assert not bad, bad


def test_the_checks_see_what_they_look_for(tmp_path):
    """The import reader resolves relative imports (so the two checks above can fail)."""
    p = PKG / "keys.py"
    mods = {m for m, _, _ in imports(p)}
    assert "editkit.forward" in mods and "editkit.tokens" in mods
    assert "editkit.forward" in graph()["editkit.keys"] and "editkit.keys" in graph()["editkit.targets"]
