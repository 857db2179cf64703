"""No import cycles between the project's modules.

A cycle hidden by an import inside a function still ties two modules together: neither can be
read, tested or moved without the other. This builds the import graph with grimp (the library
import-linter checks its contracts with) and fails on any strongly connected group of modules.
Imports under ``if TYPE_CHECKING:`` are left out: they exist only for the type checker, which
resolves a module's annotations lazily, and never run.
"""

from __future__ import annotations

import grimp

PACKAGES = ("povtor", "app", "crm_sync", "outreach", "bot", "voice", "dashboard", "nlu")


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every group of two or more modules that import each other, directly or round about
    (Tarjan's strongly connected components, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    imported = graph.find_modules_directly_imported_by(child)
                    work.append((child, iter(sorted(imported))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def test_the_finder_sees_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "a.one", "a.two", "a.three"):
        graph.add_module(module)
    graph.add_import(importer="a.one", imported="a.two")
    graph.add_import(importer="a.two", imported="a.three")
    graph.add_import(importer="a.three", imported="a.one")
    assert _cycles(graph) == [["a.one", "a.three", "a.two"]]
    graph.remove_import(importer="a.three", imported="a.one")
    assert _cycles(graph) == []


def test_no_module_imports_itself_round_about() -> None:
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True, cache_dir=None)
    assert len(graph.modules) > 200  # the whole project was read
    assert _cycles(graph) == []
