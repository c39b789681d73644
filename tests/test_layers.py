"""Layers of the code base: no import cycle inside ``actionjax``, and library code imports
neither the command-line tools (``actionjax.tools``, ``actionjax.benchmarks``, the
``python -m actionjax.<cli>`` modules) nor the converters (``convert``).

Imports are read from the source (``ast``), wherever they stand in a module (top level or
inside a function): a function-level import is still a dependency.
"""

import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, 'actionjax')
# Entry points and their helpers: allowed to import anything.
CLI_MODULES = {'actionjax.train', 'actionjax.test', 'actionjax.demo', 'actionjax.benchmark'}
CLI_PACKAGES = ('actionjax.tools', 'actionjax.benchmarks')


def module_name(path: str) -> str:
    rel = os.path.relpath(path, REPO)[:-3].replace(os.sep, '.')
    return rel[:-len('.__init__')] if rel.endswith('.__init__') else rel


def modules() -> dict[str, str]:
    found = {}
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(root, name)
                found[module_name(path)] = path
    return found


def imports_of(name: str, path: str, known: set[str]) -> set[str]:
    """The modules ``name`` imports, resolved to modules of ``known`` (``from a import b``
    counts as ``a.b`` when that is a module, else ``a``)."""
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), path)
    is_package = path.endswith('__init__.py')
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = name.split('.')
                parts = parts if is_package else parts[:-1]
                parts = parts[:len(parts) - node.level + 1]
                base = '.'.join(parts + ([node.module] if node.module else []))
            targets = [f'{base}.{alias.name}' if f'{base}.{alias.name}' in known else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            if target.split('.')[0] == 'convert':
                out.add('convert')
            while target and target not in known:
                target = target.rpartition('.')[0]
            if target:
                out.add(target)
    out.discard(name)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def is_cli(name: str) -> bool:
    return name in CLI_MODULES or name.startswith(CLI_PACKAGES)


def test_library_imports_no_tools_and_no_converter():
    bad = []
    for name, deps in graph().items():
        if is_cli(name):
            continue
        for dep in deps:
            if dep == 'convert' or is_cli(dep):
                bad.append(f'{name} imports {dep}')
    assert not bad, 'library modules must not import command-line tools or converters:\n' + '\n'.join(bad)


def test_no_import_cycles():
    deps = graph()
    # A package imports its own submodules (``__init__`` listing them) and a submodule may
    # import a sibling through the package; edges from a package into its own subtree are
    # not cycles of design, so they are left out.
    edges = {name: {d for d in targets if not d.startswith(name + '.')} for name, targets in deps.items()}
    for name in edges:
        edges[name] = {d for d in edges[name] if not name.startswith(d + '.')}
    cycles, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = 'open'
        stack.append(node)
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 'open':
                cycles.append(' -> '.join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 'done'

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, 'import cycles inside actionjax:\n' + '\n'.join(cycles)
