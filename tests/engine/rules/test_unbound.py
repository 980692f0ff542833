"""unbound_names: what a module reads on import before anything binds it (a NameError),
and nothing it does not."""

from __future__ import annotations

import ast

import pytest

from engine.rules.unbound import unbound_names


def unbound(source: str) -> list[tuple[str, int]]:
    return unbound_names(ast.parse(source).body)


def test_a_name_read_before_it_is_bound():
    assert unbound("A = B + 1\nB = 2\nprint(A, C)\n") == [("B", 1), ("C", 3)]


@pytest.mark.parametrize(
    "source",
    [
        "import os\nX = os.environ\n",
        "from a import b as c\nX = c\n",
        "if DEBUG := True:\n    pass\nY = DEBUG\n",
        "try:\n    import x\nexcept ImportError:\n    x = None\nY = x\n",
        "if A := 1:\n    B = 1\nelse:\n    C = 2\nD = B, C\n",  # bound in any branch counts
        "def f():\n    return missing\n",  # function bodies do not run on import
        "class K:\n    attr = missing\n",
        "X = [y for y in range(3) if y]\nZ = lambda: missing\n",
        "X = {k: v for k, v in {}.items()}\n",
        "for item in []:\n    pass\nY = item\n",
        "with open(__file__) as fh:\n    pass\nY = fh\n",
        "X: int\nprint(__name__, __file__, len)\n",
        "from x import *\nY = anything\n",  # a star import: any name may exist
        "X = 1\nX += 1\n",
    ],
)
def test_names_bound_on_import_are_not_reported(source):
    assert unbound(source) == []


def test_reads_that_run_on_import_are_checked():
    source = (
        "@decorator\ndef f(a=default):\n    pass\n"
        "class K(Base, metaclass=Meta):\n    pass\n"
        "X = [y for y in items]\n"
        "urlpatterns += []\n"
        "os.environ['A'] = 1\n"
    )
    assert [name for name, _ in unbound(source)] == [
        "decorator",
        "default",
        "Base",
        "Meta",
        "items",
        "urlpatterns",
        "os",
    ]


def test_a_name_is_reported_once():
    assert unbound("A = B\nC = B\n") == [("B", 1)]
