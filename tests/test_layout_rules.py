"""The layout rules docs/architecture.md states, checked over every module's source with `ast`.

Static (nothing is imported, well under a second): a rule holds for code paths no test runs, and
a lazy import inside a function counts like one at the top of the file. Imports under
`if TYPE_CHECKING:` are left out (they never run). Each allowance below names its reason; a new
exception belongs in the doc and here together.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("analysis", "orchestrator", "trainables", "search_spaces", "benchmarks")

# Which first-party packages each package may import: one direction, benchmarks on top.
LAYERS = {
    "trainables": set(),
    "analysis": {"trainables"},
    "orchestrator": {"trainables"},
    "search_spaces": {"analysis", "orchestrator", "trainables"},  # a study file may read a run
    "benchmarks": {"analysis", "orchestrator", "search_spaces", "trainables"},
}

# The writer side the report may import, at module level, in every analysis module: the contract
# and the run directory's layout (file names, `resolve`, Ray's result rows).
REPORT_WRITER_IMPORTS = {"trainables.contract", "trainables.run_dir"}
# Lazy imports (inside the one function that needs them), so a local report loads neither:
LAZY_WRITER_IMPORTS = {
    # a run directory on S3/GCS is downloaded first (pyarrow's file systems)
    "analysis/rundir.py": {"trainables.storage"},
    # a stage with custom layers: each trial's checkpoint is rebuilt and its layers checked
    "analysis/custom_layers.py": {"trainables.models", "trainables.models.layer_checks"},
}
# `python -m analysis.untrained` is a separate tool, not part of the report: it builds models.
NOT_THE_REPORT = {
    "analysis/untrained.py": {
        "trainables.models",
        "trainables.models.init_gradients",
        "trainables.models.receptive_field",
    },
}

# Every non-test module that imports Ray, and why.
RAY_IMPORTERS = {
    "trainables/ray_io.py": "the per-trial API: report, checkpoints, trial context",
    "orchestrator/ray_setup.py": "start or join Ray, the evaluation task, storage probes",
    "orchestrator/tuner.py": "Tuner, schedulers, searchers, result grids",
    "orchestrator/live_view.py": "a Tune callback and the progress board actor",
    "orchestrator/timeline.py": "a Tune callback recording each trial attempt's span",
    "orchestrator/interrupts.py": "a Tune callback that records a stop Tune's handler takes",
    "orchestrator/searcher.py": "a Tune Searcher (the course's fixed-order searcher)",
    "orchestrator/plan.py": "ray.tune.search.sample.Domain: a search-space value or a fixed one",
    "orchestrator/study.py": "ray.tune.search.sample.Domain: a search-space value or a fixed one",
}
# Modules that touch only Ray's search-space vocabulary, not its runtime.
RAY_DOMAIN_ONLY = {"orchestrator/plan.py", "orchestrator/study.py"}
# Study files write their spaces in Ray Tune's vocabulary (tune.grid_search, tune.choice, ...).
RAY_PACKAGES = ("search_spaces",)
# Private Ray attributes: only here, for a local Ray (docs/architecture.md says which two).
RAY_PRIVATE_OK = {"orchestrator/ray_setup.py"}

# Besides the reader module that registers it, a data-set name may stand in:
DATASET_NAME_OK = {
    "trainables/data/spec.py",  # DATA_DEFAULTS' default data set
    "trainables/models/reference.py",  # the course's reference table: which model on which set
}
# Code that is not a data-set name checked for (users of data sets, like a study file).
DATASET_NAME_SCOPE = ("analysis", "orchestrator", "trainables")

# The run directory's file and folder names stand only in trainables/run_dir.py, besides:
RUN_DIR_NAMES = ("study.json", "result.json", "params.json", "checkpoint.pt", "replays")
RUN_DIR_NAMES_OK = {
    "trainables/run_dir.py": "the layout itself",
    # StudyRecord.from_dict's `where` label for messages (run_dir imports the contract)
    "trainables/contract.py": "a label in error messages",
}

# A trial's config takes its defaults in one place: trainables/trial_config.py's TrialConfig
# applies trainables/config.py's `with_defaults`; the code reads the TrialConfig.
DEFAULTS_APPLIED_BY = {"trainables/trial_config.py"}


@dataclass(frozen=True)
class Import:
    module: str  # absolute dotted name
    names: tuple[str, ...]  # what a `from ... import` took from it
    lazy: bool  # inside a function
    line: int


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files(packages: tuple[str, ...] = PACKAGES) -> list[Path]:
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))


@functools.cache
def parse(path: Path) -> ast.Module:
    """Each file parsed once per session (the rules walk the same trees)."""
    return ast.parse(path.read_text(), str(path))


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: Path) -> Iterator[Import]:
    """Every import of `path` that can run, relative ones made absolute."""
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]

    def visit(node: ast.AST, lazy: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and is_type_checking(child):
                yield from (i for n in child.orelse for i in visit_one(n, lazy))
                continue
            yield from visit_one(child, lazy)

    def visit_one(node: ast.AST, lazy: bool) -> Iterator[Import]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, (), lazy, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            yield Import(module, tuple(a.name for a in node.names), lazy, node.lineno)
        else:
            inner = lazy or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            yield from visit(node, inner)

    yield from visit(parse(path), False)


def targets(imp: Import, known: set[str]) -> set[str]:
    """The first-party modules an import loads: the module, and submodules it names."""
    out = {imp.module} if imp.module in known else set()
    return out | {f"{imp.module}.{n}" for n in imp.names if f"{imp.module}.{n}" in known}


def top(module: str) -> str:
    return module.split(".")[0]


def test_every_package_imports_only_the_layers_below_it() -> None:
    bad = []
    for path in source_files():
        own = rel(path).split("/")[0]
        for imp in imports(path):
            if top(imp.module) in PACKAGES and top(imp.module) not in LAYERS[own] | {own}:
                bad.append(f"{rel(path)}:{imp.line} imports {imp.module}")
    assert not bad, "imports against the layering (docs/architecture.md):\n" + "\n".join(bad)


def test_analysis_never_imports_orchestrator() -> None:
    bad = [
        f"{rel(p)}:{i.line} imports {i.module}"
        for p in source_files(("analysis",))
        for i in imports(p)
        if top(i.module) == "orchestrator"
    ]
    assert not bad, "\n".join(bad)


def test_the_report_imports_only_the_contract_of_the_writer() -> None:
    bad = []
    for path in source_files(("analysis",)):
        name = rel(path)
        for imp in imports(path):
            if top(imp.module) != "trainables":
                continue
            allowed = REPORT_WRITER_IMPORTS | NOT_THE_REPORT.get(name, set())
            if imp.lazy:
                allowed = allowed | LAZY_WRITER_IMPORTS.get(name, set())
            if imp.module not in allowed:
                where = "inside a function" if imp.lazy else "at module level"
                bad.append(f"{name}:{imp.line} imports {imp.module} {where}")
    assert not bad, (
        "the report may import trainables.contract and trainables.run_dir only (and the lazy "
        "imports listed in tests/test_layout_rules.py):\n" + "\n".join(bad)
    )


def test_the_writer_modules_the_report_imports_need_only_the_standard_library() -> None:
    """The contract and the run directory's layout load no torch, Ray or other writer module, so
    a report on a laptop needs neither (tests/test_report.py checks it in a fresh process)."""
    import sys

    bad = []
    for name in sorted(REPORT_WRITER_IMPORTS):
        path = ROOT / f"{name.replace('.', '/')}.py"
        for imp in imports(path):
            if imp.module not in REPORT_WRITER_IMPORTS and top(imp.module) not in (
                sys.stdlib_module_names | {"__future__"}
            ):
                bad.append(f"{rel(path)}:{imp.line} imports {imp.module}")
    assert not bad, "\n".join(bad)


def analysis_closure(start: str) -> set[str]:
    known = {module_name(p) for p in source_files(("analysis",))}
    paths = {module_name(p): p for p in source_files(("analysis",))}
    seen, todo = set(), [start]
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        for imp in imports(paths[mod]):
            todo.extend(targets(imp, known) - seen)
    return seen


def test_the_report_never_reaches_the_probes_tool() -> None:
    reached = analysis_closure("analysis.report")
    assert {"analysis.compare", "analysis.rundir"} <= reached  # the walk follows imports
    assert not {"analysis.untrained"} & reached


def import_graph() -> dict[str, set[str]]:
    files = source_files()
    known = {module_name(p) for p in files}
    return {
        module_name(p): {t for i in imports(p) for t in targets(i, known)} - {module_name(p)}
        for p in files
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def test_no_import_cycles() -> None:
    """Lazy imports count: a cycle hidden inside a function is still two modules that cannot be
    understood, or moved, one without the other (report <-> compare was one)."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles(import_graph()) == []


def ray_imports(path: Path) -> list[Import]:
    return [i for i in imports(path) if top(i.module) == "ray"]


def test_only_the_listed_modules_import_ray() -> None:
    importers = {rel(p) for p in source_files() if ray_imports(p)}
    listed = set(RAY_IMPORTERS) | {rel(p) for p in source_files(RAY_PACKAGES) if ray_imports(p)}
    assert importers == listed, (
        f"import Ray but are not listed: {sorted(importers - listed)}; listed but import no Ray: "
        f"{sorted(set(RAY_IMPORTERS) - importers)} (update docs/architecture.md and this test)"
    )
    for name in RAY_DOMAIN_ONLY:
        modules = {i.module for i in ray_imports(ROOT / name)}
        assert modules == {"ray.tune.search.sample"}, f"{name}: {modules}"


def private_ray_uses(path: Path) -> list[str]:
    """`ray._x` imports and `ray...._x` attribute chains."""
    found = [f"{i.line}: import {i.module}" for i in ray_imports(path) if "._" in i.module]
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id == "ray":
                found.append(f"{node.lineno}: ray...{node.attr}")
    return found


def test_private_ray_attributes_only_in_ray_setup() -> None:
    bad = {
        rel(p): uses
        for p in source_files()
        if rel(p) not in RAY_PRIVATE_OK and (uses := private_ray_uses(p))
    }
    assert not bad, bad
    assert private_ray_uses(ROOT / "orchestrator/ray_setup.py"), "the allowance is still needed"


def registered_datasets() -> dict[str, str]:
    """Data-set name -> the module whose `register_dataset("name", ...)` call registers it."""
    out = {}
    for path in source_files(("trainables",)):
        for node in ast.walk(parse(path)):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", None)) == "register_dataset"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                out[node.args[0].value] = rel(path)
    return out


def string_constants(path: Path) -> Iterator[ast.Constant]:
    """String literals, docstrings left out (prose may name a data set)."""
    tree = parse(path)
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            yield node


def test_dataset_names_only_in_their_reader_module() -> None:
    owners = registered_datasets()
    assert {"tiny_imagenet", "lunar", "mnist", "cifar10", "fashion_mnist"} <= set(owners)
    bad = []
    for path in source_files(DATASET_NAME_SCOPE):
        name = rel(path)
        if name in DATASET_NAME_OK:
            continue
        for const in string_constants(path):
            if const.value in owners and owners[const.value] != name:
                bad.append(f"{name}:{const.lineno} names {const.value!r}")
    assert not bad, (
        "a data-set fact outside its reader module (make it a registry field, see "
        "trainables/data/registry.py DatasetEntry):\n" + "\n".join(bad)
    )


def test_run_directory_names_only_in_its_layout_module() -> None:
    found = {
        rel(p): [f"{c.lineno}: {c.value}" for c in string_constants(p) if c.value in RUN_DIR_NAMES]
        for p in source_files(("analysis", "orchestrator", "trainables"))
    }
    bad = {name: lines for name, lines in found.items() if lines and name not in RUN_DIR_NAMES_OK}
    assert not bad, f"name the run directory's files through trainables/run_dir.py: {bad}"
    stale = [n for n in RUN_DIR_NAMES_OK if not found.get(n)]
    assert not stale, f"allowed but no longer needed (drop them here and in the doc): {stale}"


def test_only_the_trial_config_fills_in_the_defaults() -> None:
    bad = [
        f"{rel(p)}:{i.line} imports with_defaults"
        for p in source_files(("analysis", "orchestrator", "trainables"))
        if rel(p) not in DEFAULTS_APPLIED_BY | {"trainables/config.py"}
        for i in imports(p)
        if i.module == "trainables.config" and "with_defaults" in i.names
    ]
    assert not bad, "read it through trainables.trial_config.TrialConfig:\n" + "\n".join(bad)


def test_the_doc_names_every_listed_exception() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text()
    named = [
        *RAY_IMPORTERS,
        *LAZY_WRITER_IMPORTS,
        *NOT_THE_REPORT,
        *DATASET_NAME_OK,
        *DEFAULTS_APPLIED_BY,
        *RUN_DIR_NAMES_OK,
        *(f"{m.replace('.', '/')}.py" for m in REPORT_WRITER_IMPORTS),
    ]
    missing = [f for f in named if f"`{f}`" not in doc]
    assert not missing, f"docs/architecture.md does not name: {missing}"
