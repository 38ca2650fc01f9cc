"""The layering, checked on every run: no import circles, nothing importing upward, no router → router.

Read from source with `ast` (tests/architecture/imports.py), so a deferred
import inside a function or under `if TYPE_CHECKING:` counts like any other:
hiding an edge there is how the circles this replaced had grown.
"""

from __future__ import annotations

from pathlib import Path

from tests.architecture.imports import circles, import_graph, upward_imports
from tests.conftest import REPO_ROOT


def test_the_project_has_no_import_circles():
    found = circles(import_graph(REPO_ROOT))
    assert found == [], "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_nothing_imports_upward_and_no_router_imports_another():
    found = upward_imports(import_graph(REPO_ROOT))
    assert found == [], "imports against the layering:\n" + "\n".join(found)


def test_the_graph_sees_the_project():
    graph = import_graph(REPO_ROOT)
    assert len(graph) > 100
    assert "core.services.transcode" in graph["workers.tasks.transcode"]
    assert "core.net" in graph["core.services.webhooks"]


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in ("api", "workers", "core", "cli"):
        (root / package).mkdir(exist_ok=True)
    return root


def test_the_check_finds_circles_through_relative_deferred_and_type_checking_imports(tmp_path):
    root = _tree(tmp_path, {
        "core/__init__.py": "",
        "core/services/__init__.py": "",
        "core/services/a.py": "from . import b\n",
        "core/services/b.py": "def f():\n    from core.services.c import x\n",
        "core/services/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import y\n",
        "core/services/d.py": "import importlib\nimportlib.import_module('core.services.e')\n",
        "core/services/e.py": "from core.services import d\n",
        "core/services/ok.py": "from core.services.a import name_not_a_module\n",
    })
    assert circles(import_graph(root)) == [
        ["core.services.a", "core.services.b", "core.services.c"],
        ["core.services.d", "core.services.e"],
    ]


def test_the_check_finds_upward_imports_and_router_to_router(tmp_path):
    root = _tree(tmp_path, {
        "core/__init__.py": "",
        "core/media/__init__.py": "",
        "core/media/m.py": "from core.live import session\nfrom core.services.assets import x\n",
        "core/live/__init__.py": "",
        "core/live/session.py": "",
        "core/services/__init__.py": "",
        "core/services/assets.py": "import api.app\nfrom workers import context\nfrom cli import main\n",
        "api/__init__.py": "",
        "api/app.py": "",
        "api/origin.py": "",
        "api/routers/__init__.py": "",
        "api/routers/one.py": "from api.routers import two\nfrom api import origin\n",
        "api/routers/two.py": "",
        "workers/__init__.py": "",
        "workers/context.py": "",
        "cli/__init__.py": "",
        "cli/main.py": "",
    })
    assert upward_imports(import_graph(root)) == [
        "api.routers.one -> api.routers.two (a router never imports another router)",
        "core.media.m -> core.live.session (core/media sits below core/live)",
        "core.media.m -> core.services.assets (core/media sits below core/services)",
        "core.services.assets -> api.app (core never imports the API)",
        "core.services.assets -> cli.main (core never imports the CLI)",
        "core.services.assets -> workers.context (core never imports the workers)",
    ]
