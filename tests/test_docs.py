"""Every ```python block in docs/*.md runs: blocks of one file in order, in one namespace."""

import glob
import os
import re

import pytest

import actionjax.registry

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = sorted(glob.glob(os.path.join(REPO, 'docs', '*.md')))
BLOCK = re.compile(r'^```python\n(.*?)^```', re.DOTALL | re.MULTILINE)


def python_blocks(path: str) -> list[str]:
    with open(path, encoding='utf-8') as f:
        return BLOCK.findall(f.read())


def test_there_are_docs_with_code():
    assert any(python_blocks(path) for path in DOCS)


@pytest.mark.parametrize('path', DOCS, ids=[os.path.basename(p) for p in DOCS])
def test_doc_code_blocks_run(path, monkeypatch):
    monkeypatch.chdir(REPO)
    # A page registers its examples as a user would (no force=True); each page starts from
    # actionjax's own entries, as a fresh process does, and leaves the registries as it found them.
    for registry in vars(actionjax.registry).values():
        if isinstance(registry, actionjax.registry.Registry):
            builtin = {k: v for k, v in registry.entries.items()
                       if getattr(v, '__module__', '').startswith('actionjax')}
            monkeypatch.setattr(registry, '_entries', builtin)
    namespace = {'__name__': '__doc_test__'}
    for index, block in enumerate(python_blocks(path)):
        code = compile(block, f'{os.path.basename(path)}[block {index}]', 'exec')
        exec(code, namespace)
