"""The shape of the code, measured: ``python bench/architecture.py [--json]``.

Reads every module of ``braintumor/`` with :mod:`ast` (nothing is imported) and prints:

- modules and lines; modules over 300 lines (each should say in its docstring why it is one job);
- the imports between floors that point *up* (a module importing one of a higher floor, see
  ``FLOORS``; imports inside functions count too, they are still a dependency);
- circles of module-level imports (strongly connected components);
- the modules that receive a ``DictConfig`` (import or annotate it): the target is only
  ``pipeline/`` (and ``train.py``, outside the package).

Floors, lowest first, follow docs/reference.md: the ground floor (errors, atomic writes, the
metric vocabulary, the console), models, data, runs, evaluation, inference, sweeps, training,
pipeline, and the command line on top.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "braintumor"
FLOORS = ["", "models", "data", "runs", "evaluation", "inference", "sweeps", "training",
          "pipeline", "__main__"]  # fmt: skip
LONG = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def floor(module: str) -> int:
    """The floor of ``braintumor.<package>...`` (top-level modules are the ground floor)."""
    parts = module.split(".")
    # braintumor.errors, braintumor.atomic, braintumor.vocabulary, ...: the ground floor
    return FLOORS.index(parts[1]) if len(parts) > 1 and parts[1] in FLOORS else 0


def imports(tree: ast.Module, package: str) -> tuple[set[str], set[str]]:
    """The ``braintumor`` modules imported at module level, and anywhere (functions too)."""
    top: set[str] = set()
    every: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))  # fmt: skip
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        found = {n for n in names if n.startswith("braintumor")}
        every |= found
        if node in tree.body:
            top |= found
    return top, every


CONFIG_PARAMETERS = re.compile(r"^(cfg|config|\w+_cfg)$")


def receives_config(tree: ast.Module) -> bool:
    """Whether the module imports or annotates ``DictConfig``, or has a function taking a
    parameter named like a config (``cfg``, ``config``, ``data_cfg``, ...)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and CONFIG_PARAMETERS.match(node.arg):
            kind = ast.unparse(node.annotation) if node.annotation else ""
            words = set(re.findall(r"\w+", kind))
            if not kind or words & {"DictConfig", "Mapping", "Any", "dict"}:
                return True  # a config of its own command line (a dataclass) does not count
        if isinstance(node, ast.ImportFrom) and node.module == "omegaconf":  # noqa: SIM102
            if any(a.name == "DictConfig" for a in node.names):
                return True
        if isinstance(node, ast.Attribute) and node.attr == "DictConfig":
            return True
    return False


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; the components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def measure() -> dict:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p): p for p in files}
    top_graph: dict[str, set[str]] = {}
    upward: list[tuple[str, str]] = []
    config_modules: list[str] = []
    long_modules: list[tuple[str, int]] = []
    lines = 0
    for name, path in modules.items():
        text = path.read_text()
        n = text.count("\n")
        lines += n
        if n > LONG:
            long_modules.append((name, n))
        tree = ast.parse(text)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        top, every = imports(tree, package)

        def resolve(target: str) -> str | None:
            while target and target not in modules:
                target = target.rsplit(".", 1)[0] if "." in target else ""
            return target or None

        top_graph[name] = {t for t in map(resolve, top) if t and t != name}
        for target in {t for t in map(resolve, every) if t and t != name}:
            if floor(target) > floor(name):
                upward.append((name, target))
        if receives_config(tree):
            config_modules.append(name)
    return {
        "modules": len(modules),
        "lines": lines,
        "long_modules": sorted(long_modules, key=lambda x: -x[1]),
        "upward_imports": sorted(upward),
        "import_circles": strongly_connected(top_graph),
        "modules_receiving_config": sorted(config_modules),
    }


def config_leaves(conf_dir: Path = ROOT / "conf", faced: bool = False) -> list[str]:
    """The leaves of the default composed config (``conf/train.yaml``, Hydra's own node left
    out): every ``a.b.c`` a command line can set. ``faced``: less the machinery a user never
    sets (``_target_``, ``_partial_``, ``_recursive_``) and the interpolations of other keys
    (``${paths.output_dir}/checkpoints``)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import DictConfig, ListConfig

    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose("train")

    def walk(node: object, prefix: str) -> list[str]:
        name = prefix.rstrip(".").rsplit(".", 1)[-1]
        if faced and (name in ("_target_", "_partial_", "_recursive_")
                      or getattr(node, "_is_interpolation", lambda: False)()):  # fmt: skip
            return []
        if isinstance(node, DictConfig):
            out = []
            for key in node:
                out += walk(node._get_node(key), f"{prefix}{key}.")
            return out or [prefix.rstrip(".")]
        if isinstance(node, ListConfig):
            return [prefix.rstrip(".")]
        return [prefix.rstrip(".")]

    return sorted(walk(cfg, ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the measurement as JSON")
    found = measure()
    found["config_leaves"] = len(config_leaves())
    found["config_leaves_faced"] = len(config_leaves(faced=True))
    if parser.parse_args().json:
        print(json.dumps(found, indent=2))
        return
    print(f"modules {found['modules']}, lines {found['lines']}")
    print(f"config leaves of the default composition: {found['config_leaves']} "
          f"({found['config_leaves_faced']} a user faces)")  # fmt: skip
    print(f"modules over {LONG} lines: {len(found['long_modules'])}")
    for name, n in found["long_modules"]:
        print(f"  {n:5d}  {name}")
    print(f"imports pointing up a floor: {len(found['upward_imports'])}")
    for a, b in found["upward_imports"]:
        print(f"  {a} -> {b}")
    print(f"circles of module-level imports: {len(found['import_circles'])}")
    for comp in found["import_circles"]:
        print("  " + " <-> ".join(comp))
    print(f"modules receiving a config: {len(found['modules_receiving_config'])}")
    for name in found["modules_receiving_config"]:
        print(f"  {name}")


if __name__ == "__main__":
    main()
