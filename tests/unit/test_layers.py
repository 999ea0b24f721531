"""The architecture as a test: inside `pingapp/`, every import points down.

`LAYERS` lists pingapp's modules and packages from the bottom up; a module may import
from its own layer and the ones below, never from one above (imports inside functions
count too). A new module must be placed here, so the order stays written down."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PINGAPP = Path(__file__).resolve().parents[2] / "pingapp"

#: From the bottom up. A name covers the module and, for a package, everything in it.
LAYERS: tuple[tuple[str, ...], ...] = (
    # Foundations: no app state, no sign-in.
    (
        "pingapp.core",
        "pingapp.web",
        "pingapp.urls",
        "pingapp.routes",
        "pingapp.telemetry",
        "pingapp.reflex_internals",
    ),
    ("pingapp.settings",),
    # DPoP, for the client, the provider and the API.
    ("pingapp.dpop",),
    # The shared HTTP client and its token-attaching auth; telemetry's wiring.
    (
        "pingapp.outbound",
        "pingapp.telemetry_instrument",
        "pingapp.telemetry_setup",
    ),
    # The sign-in library.
    ("pingapp.oidc",),
    # The protected API and the embedded provider.
    ("pingapp.api", "pingapp.devidp"),
    # The application context: builds the above once per process.
    ("pingapp.context",),
    # Features on the context.
    ("pingapp.auth", "pingapp.sessions", "pingapp.tabs", "pingapp.startup", "pingapp.front"),
    # The pages, and the ping feature with its page.
    ("pingapp.components", "pingapp.pages", "pingapp.ping"),
    # The wiring.
    ("pingapp.pingapp",),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PINGAPP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int | None:
    for index, names in enumerate(LAYERS):
        if any(module == name or module.startswith(name + ".") for name in names):
            return index
    return None


def pingapp_imports(path: Path, module: str) -> list[str]:
    """The pingapp modules `path` (the module `module`) imports, anywhere in it."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pingapp import telemetry` names a module; `from x.y import Name` does not.
            found.extend(f"{base}.{alias.name}" for alias in node.names)
            found.append(base)
    return [name for name in found if name == "pingapp" or name.startswith("pingapp.")]


def upward_imports(path: Path, module: str) -> list[str]:
    """What `module` imports from a layer above its own."""
    here = layer_of(module)
    if here is None:
        return []
    return sorted(
        {
            name
            for name in pingapp_imports(path, module)
            if (there := layer_of(name)) is not None and there > here
        }
    )


MODULES = sorted(PINGAPP.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    unplaced = [module_name(path) for path in MODULES if layer_of(module_name(path)) is None]
    assert unplaced in ([], ["pingapp"]), f"add these to LAYERS: {unplaced}"


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_imports_point_down(path: Path) -> None:
    module = module_name(path)
    assert upward_imports(path, module) == [], f"{module} imports from a layer above its own"


def test_the_check_sees_a_back_arrow(tmp_path: Path) -> None:
    sample = tmp_path / "keys.py"
    sample.write_text(
        "from pingapp.core import jwks\n"
        "def later():\n"
        "    from pingapp.context import context\n"
        "    from ..oidc import client\n"
    )
    assert upward_imports(sample, "pingapp.core.keys") == [
        "pingapp.context",
        "pingapp.context.context",
        "pingapp.oidc",
        "pingapp.oidc.client",
    ]
