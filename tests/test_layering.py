"""The layers of the tree, from the import graph of every first-party module (grimp, the engine
of import-linter; imports inside functions count as much as those at the top of a module).

- ``sluice/`` is the shared core: it imports none of ``beam``, ``local``, ``functions``, ``main``;
- ``functions/`` and ``main`` are the deployed layer: no ``apache_beam``, directly or through
  any first-party module, and no ``local``;
- nothing imports ``tests``;
- no import cycle among first-party modules.

grimp takes packages only, so ``main.py`` (one module) is read with ``ast`` and its imports
are followed into the graph. Imports named by string (``sluice.ingest.launch``'s
``local.launcher:LocalLauncher``, loaded only when ``SLUICE_LAUNCHER=local``) are not edges.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

import grimp
import pytest

from sluice.settings import REPO_ROOT

PACKAGES = ("sluice", "functions", "beam", "local")
DEPLOYED = ("functions", "main")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    """Every first-party package's modules and their imports (external packages as leaves)."""
    return grimp.build_graph(*PACKAGES, include_external_packages=True, cache_dir=None)


def imports_of_main() -> set[str]:
    """Every module main.py imports, at any depth of its code."""
    tree = ast.parse((REPO_ROOT / "main.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def chains(graph: grimp.ImportGraph, importer: str, imported: str) -> list[tuple[str, ...]]:
    """Shortest import chains from package/module ``importer`` to ``imported``."""
    if imported not in graph.modules:
        return []
    return sorted(graph.find_shortest_chains(importer, imported, as_packages=True))


def main_chains(graph: grimp.ImportGraph, imported: str) -> list[tuple[str, ...]]:
    """Import chains from main.py to ``imported``, through main's first-party imports."""
    found = []
    for module in sorted(imports_of_main()):
        if module.split(".")[0] == imported:
            found.append(("main", module))
        elif module in graph.modules and imported in graph.modules:
            chain = graph.find_shortest_chain(module, imported, as_packages=True)
            if chain:
                found.append(("main", *chain))
    return found


def strongly_connected(edges: dict[str, set[str]]) -> Iterator[list[str]]:
    """Tarjan's strongly connected components of more than one module (or a self-import)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(module: str) -> Iterator[list[str]]:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(edges[module]):
            if target not in index:
                yield from visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1 or module in edges[module]:
                yield sorted(component)

    for module in sorted(edges):
        if module not in index:
            yield from visit(module)


def test_layering_graph_sees_every_package_and_function_level_imports(
    graph: grimp.ImportGraph,
) -> None:
    assert {module.split(".")[0] for module in graph.modules} >= set(PACKAGES)
    # warehouse_class imports the DuckDB adapter inside the function, on demand.
    assert "sluice.warehouse.duckdb" in graph.find_modules_directly_imported_by("sluice.warehouse")
    assert {"functions.on_upload", "functions.cook"} <= imports_of_main()


@pytest.mark.parametrize("layer", ["beam", "local", "functions", "main"])
def test_sluice_imports_no_outer_layer(graph: grimp.ImportGraph, layer: str) -> None:
    assert chains(graph, "sluice", layer) == []


@pytest.mark.parametrize("forbidden", ["apache_beam", "local"])
def test_deployed_layer_imports_no_beam_nor_local(graph: grimp.ImportGraph, forbidden: str) -> None:
    assert chains(graph, "functions", forbidden) == []
    assert main_chains(graph, forbidden) == []


def test_nothing_imports_tests(graph: grimp.ImportGraph) -> None:
    importers = [p for p in PACKAGES if chains(graph, p, "tests")]

    assert importers == []
    assert not {m for m in imports_of_main() if m.split(".")[0] == "tests"}


def test_first_party_modules_have_no_import_cycle(graph: grimp.ImportGraph) -> None:
    first_party = {m for m in graph.modules if m.split(".")[0] in PACKAGES}
    edges = {
        module: graph.find_modules_directly_imported_by(module) & first_party
        for module in first_party
    }

    cycles = list(strongly_connected(edges))

    assert cycles == [], "import cycles (each a set of modules importing one another): " + str(
        cycles
    )
