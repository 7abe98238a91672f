"""The static import graph of operator/rung has no cycle, between modules or between
its top-level packages (the import-linter contracts in pyproject.toml fix the order;
this proves the graph they order is acyclic as a whole)."""

from __future__ import annotations

import grimp


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("rung")


def test_no_module_imports_itself_back() -> None:
    graph = _graph()
    cycles = [
        (importer, imported)
        for importer in sorted(graph.modules)
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported != importer and graph.chain_exists(importer=imported, imported=importer)
    ]
    assert cycles == []


def test_no_cycle_between_packages() -> None:
    graph = _graph()
    subpackages = sorted(m for m in graph.modules if graph.find_children(m) and m != "rung")

    def package_of(module: str) -> str:
        """The top-level package holding `module` (rung.plan, rung.api, ...); a top-level
        module is its own node. Inside plan/ the layers contract orders the modules and
        the routers subpackage."""
        top = ".".join(module.split(".")[:2])
        return top if top in subpackages else module

    edges = {
        (package_of(a), package_of(b))
        for a in graph.modules
        for b in graph.find_modules_directly_imported_by(a)
        if package_of(a) != package_of(b)
    }
    packages = sorted({package_of(m) for m in graph.modules} - {"rung"})
    edges = {(a, b) for a, b in edges if "rung" not in (a, b)}
    reach: dict[str, set[str]] = {p: set() for p in packages}
    for a, b in edges:
        reach[a].add(b)
    changed = True
    while changed:
        changed = False
        for p in packages:
            new = set().union(*(reach[q] for q in reach[p])) - reach[p]
            if new:
                reach[p] |= new
                changed = True
    assert [p for p in packages if p in reach[p]] == []
