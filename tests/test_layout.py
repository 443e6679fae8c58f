"""The library's layers, read from the source: cifar10lib/__init__.py names
its packages bottom to top, and no module imports from a package above its
own; no test imports a script.

Every import counts, the ones inside functions too (several are there to
keep a process light), so the order cannot be broken where it is not seen
at start-up.
"""
import ast
import os
import re

from conftest import REPO

LIBRARY = os.path.join(REPO, 'cifar10lib')


def _layer_order():
  """The packages, bottom first, from the line `a < b < ...` of
  cifar10lib/__init__.py's docstring (docs/code_map.md states the same)."""
  with open(os.path.join(LIBRARY, '__init__.py')) as f:
    doc = ast.get_docstring(ast.parse(f.read()))
  (line,) = [l for l in doc.splitlines()
             if re.match(r'^\s*\w+( < \w+)+\s*$', l)]
  return [name.strip() for name in line.split('<')]


def _imports(path):
  """The dotted names a file imports: `from a.b import c` gives a.b.c."""
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        yield node.lineno, alias.name
    elif isinstance(node, ast.ImportFrom) and node.module:
      for alias in node.names:
        yield node.lineno, node.module + '.' + alias.name


def test_no_package_imports_from_a_package_above_it():
  order = _layer_order()
  on_disk = sorted(d for d in os.listdir(LIBRARY)
                   if os.path.isfile(os.path.join(LIBRARY, d, '__init__.py')))
  assert sorted(order) == on_disk, 'cifar10lib/__init__.py names %s' % order
  # Nothing but packages beside __init__.py: every module is in a layer.
  assert sorted(os.listdir(LIBRARY)) == sorted(
      on_disk + ['__init__.py'] +
      (['__pycache__'] if os.path.isdir(os.path.join(LIBRARY, '__pycache__'))
       else []))
  with open(os.path.join(REPO, 'docs', 'code_map.md')) as f:
    assert ' < '.join(order) in f.read()
  rank = {name: i for i, name in enumerate(order)}
  upward = []
  for package in order:
    for dirpath, _, files in os.walk(os.path.join(LIBRARY, package)):
      for name in sorted(f for f in files if f.endswith('.py')):
        path = os.path.join(dirpath, name)
        for lineno, imported in _imports(path):
          parts = imported.split('.')
          if parts[0] != 'cifar10lib':
            continue
          assert len(parts) > 1 and parts[1] in rank, (path, lineno, imported)
          if rank[parts[1]] > rank[package]:
            upward.append('%s:%d imports %s' % (
                os.path.relpath(path, REPO), lineno, imported))
  assert not upward, 'imports from a higher layer:\n' + '\n'.join(upward)


def _is_script(path):
  with open(path) as f:
    return "if __name__ == '__main__':" in f.read()


def test_no_test_imports_a_script():
  # What tests put on sys.path: the repository, bench/ and tests/.
  scripts = {}
  for folder in ('', 'bench', 'tests'):
    for name in os.listdir(os.path.join(REPO, folder)):
      path = os.path.join(REPO, folder, name)
      if name.endswith('.py') and _is_script(path):
        scripts[name[:-3]] = os.path.join(folder, name)
  assert {'benchmark', 'k8s_cluster', 'cifar10_train'} <= set(scripts)
  found = []
  tests = os.path.join(REPO, 'tests')
  for dirpath, _, files in os.walk(tests):
    for name in sorted(f for f in files if f.endswith('.py')):
      path = os.path.join(dirpath, name)
      for lineno, imported in _imports(path):
        top = imported.split('.')[0]
        if top in scripts:
          found.append('%s:%d imports %s' % (
              os.path.relpath(path, REPO), lineno, scripts[top]))
  assert not found, '\n'.join(found)
