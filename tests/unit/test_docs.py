"""The README, docs/*.md and .env.example name only things that exist.

Relative links resolve to a file or folder of the repository, and each `#anchor` to a
heading of its target (GitHub's slugs); every `make <target>` shown in code is a
target of the Makefile; every `bench/`, `tests/` and `pingapp/` path exists (and the
test paths docs/security.md writes relative to `tests/`); every variable
docs/configuration.md names is a setting pingapp reads or one the Makefile,
`rxconfig.py`, Reflex or OpenTelemetry reads, and every setting is there; every
variable `.env.example` sets or shows commented out is a setting pingapp reads; every
path of the module map (docs/design.md) exists. The README stays short, shows the
command CI runs and links every docs page. Files are read as text (and Reflex's and
OpenTelemetry's lists of variables imported): nothing is started and nothing leaves the
machine. Each check also runs on a small broken tree of its own, to show it can fail.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from collections import Counter
from pathlib import Path

import opentelemetry.sdk.environment_variables as otel_variables
import pytest
from reflex_base.config import BaseConfig
from reflex_base.environment import EnvironmentVariables

from pingapp.devidp.config import IdpSettings
from pingapp.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
CONFIGURATION = ROOT / "docs" / "configuration.md"
SECURITY = ROOT / "docs" / "security.md"
DESIGN = ROOT / "docs" / "design.md"
#: The README is what a newcomer reads first: five minutes, not fifty.
README_MAX_BYTES = 8_000

FENCE = re.compile(r"^```.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
MAKE = re.compile(r"(?<![\w$(-])make[ \t]+([a-z][a-z0-9_-]*)")
RULE = re.compile(r"^([a-z][a-z0-9_-]*)[ \t]*:(?!=)", re.MULTILINE)
ENV_LINE = re.compile(r"^#?[ \t]*([A-Z][A-Z0-9_]*)=", re.MULTILINE)
#: A path of the repository as the pages write it: `pingapp/outbound/http.py`, `tests/e2e/`,
#: `bench/load.py`, `tests/unit/test_oidc.py::test_name` (not inside a URL or a longer
#: path).
REPO_PATH = re.compile(r"(?<![\w./-])((?:bench|tests|pingapp)/[\w./-]*)")
#: docs/security.md writes test paths relative to `tests/`: `api/test_api_tokens.py`.
TEST_PATH = re.compile(r"(?<![\w./-])((?:api|unit|idp|e2e|deploy|faults|support)/[\w/-]+\.py)")
#: An environment variable's name: capitals and digits with at least one underscore.
VARIABLE = re.compile(r"(?<![\w-])[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+(?![\w-])")


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code (a link's text may hold
    code: `[`x`](y)` keeps its link)."""
    return INLINE_CODE.sub("code", FENCE.sub("", text))


def code(text: str) -> list[str]:
    """The fenced code blocks and inline code spans of a page."""
    return FENCE.findall(text) + INLINE_CODE.findall(FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text lower-cased, everything but
    letters, digits, `_`, `-` and spaces dropped, spaces made `-`."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor; a repeated heading gets `-1`, `-2`, … as on GitHub."""
    seen: Counter[str] = Counter()
    found: set[str] = set()
    for match in HEADING.finditer(FENCE.sub("", page.read_text(encoding="utf-8"))):
        base = slug(match.group(2))
        found.add(f"{base}-{seen[base]}" if seen[base] else base)
        seen[base] += 1
    return found


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """The relative links of `page` that lead nowhere (outside `root`, to no file or
    folder, to no heading of a Markdown target), each with the reason."""
    problems: list[str] = []
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue  # https:, mailto:, …: not ours to check here
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page.resolve()
        if root.resolve() not in (linked, *linked.parents):
            problems.append(f"{target}: outside the repository")
        elif not linked.exists():
            problems.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            name = linked.relative_to(root.resolve()).as_posix()
            problems.append(f"{target}: no heading #{anchor} in {name}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=relative)
def test_relative_links_and_anchors_resolve(page: Path) -> None:
    problems = broken_links(page)
    assert not problems, f"{relative(page)}: broken links:\n" + "\n".join(problems)


def test_a_broken_link_or_anchor_is_reported(tmp_path: Path) -> None:
    """The check itself, on a tree of its own: a link to nothing, an anchor to no
    heading and a link out of the tree are reported; good links and code are not."""
    (tmp_path / "README.md").write_text("# Readme\n\n## Documentation\n", encoding="utf-8")
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "# A page\n\n## Its part\n\n"
        "[gone](missing.md) [no heading](../README.md#no-such-heading) [out](../../x.md) "
        "[ok](../README.md#documentation) [here](#its-part) [away](https://example.org/x)\n"
        "```\n[in code](also-missing.md)\n```\n",
        encoding="utf-8",
    )
    assert broken_links(page, root=tmp_path) == [
        "missing.md: no such file",
        "../README.md#no-such-heading: no heading #no-such-heading in README.md",
        "../../x.md: outside the repository",
    ]


def test_slugs_follow_github() -> None:
    assert slug("Sender-constrained tokens (DPoP)") == "sender-constrained-tokens-dpop"
    assert slug("The boundary, round 3 (each tested against the running app)") == (
        "the-boundary-round-3-each-tested-against-the-running-app"
    )
    assert slug("Test helpers: `tests/support/`") == "test-helpers-testssupport"
    assert slug("Using [Auth0](https://auth0.com)") == "using-auth0"


def makefile_targets() -> set[str]:
    return set(RULE.findall((ROOT / "Makefile").read_text(encoding="utf-8")))


@pytest.mark.parametrize("page", PAGES, ids=relative)
def test_every_make_target_shown_exists(page: Path) -> None:
    named = {
        target
        for snippet in code(page.read_text(encoding="utf-8"))
        for target in MAKE.findall(snippet)
    }
    unknown = sorted(named - makefile_targets())
    assert not unknown, f"{relative(page)} names make targets the Makefile lacks: {unknown}"


def test_the_makefile_targets_are_found() -> None:
    assert {"install", "install-dev", "run", "prod", "test", "test-fast", "test-e2e"} <= (
        makefile_targets()
    )


def test_env_example_names_only_real_settings() -> None:
    named = set(ENV_LINE.findall((ROOT / ".env.example").read_text(encoding="utf-8")))
    assert named, "no variable found in .env.example"
    unknown = sorted(named - setting_names())
    assert not unknown, f".env.example names variables pingapp does not read: {unknown}"


def layout_paths() -> list[str]:
    """The paths of the module map (the code block under "Module map" in
    docs/design.md): a top-level line names one or more paths before its description
    (two or more spaces); a line indented by two spaces names files of the folder above
    it, comma-separated; deeper lines continue a description."""
    section = DESIGN.read_text(encoding="utf-8").split("\n## Module map", 1)[1]
    block = FENCE.findall(section)[0].splitlines()[1:-1]
    paths: list[str] = []
    folder = ""
    for line in block:
        if not line.strip():
            continue
        names = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
        if not line.startswith(" "):
            paths += names.split()
            folder = paths[-1] if paths[-1].endswith("/") else ""
        elif re.match(r"^ {2}\S", line) and folder:
            paths += [folder + name.strip() for name in names.split(",")]
    return paths


def test_every_path_of_the_module_map_exists() -> None:
    paths = layout_paths()
    assert "pingapp/auth/routes.py" in paths  # the listing was read
    missing = [path for path in paths if not (ROOT / path).exists()]
    assert not missing, f"docs/design.md's module map lists paths that do not exist: {missing}"


# Paths: `bench/...`, `tests/...`, `pingapp/...` anywhere in a page (prose and code).


def missing_paths(text: str, root: Path = ROOT, *, tests_relative: bool = False) -> list[str]:
    """The repository paths `text` names that do not exist under `root`: a trailing
    `.` ends a sentence, `::name` names a test in the file. With `tests_relative`, the
    test paths written relative to `tests/` too."""
    named = [(path, path) for path in REPO_PATH.findall(text)]
    if tests_relative:
        named += [(path, f"tests/{path}") for path in TEST_PATH.findall(text)]
    missing: list[str] = []
    for written, path in named:
        path = path.split("::", 1)[0].rstrip(".")
        if not (root / path).exists() and written not in missing:
            missing.append(written)
    return missing


@pytest.mark.parametrize("page", PAGES, ids=relative)
def test_every_repository_path_named_exists(page: Path) -> None:
    missing = missing_paths(page.read_text(encoding="utf-8"), tests_relative=page == SECURITY)
    assert not missing, f"{relative(page)} names paths that do not exist: {missing}"


def test_a_missing_path_is_reported(tmp_path: Path) -> None:
    (tmp_path / "pingapp").mkdir()
    (tmp_path / "pingapp" / "http.py").write_text("", encoding="utf-8")
    (tmp_path / "tests" / "api").mkdir(parents=True)
    (tmp_path / "tests" / "api" / "test_a.py").write_text("", encoding="utf-8")
    text = (
        "`pingapp/http.py`, pingapp/http.py. `tests/api/test_a.py::test_x` "
        "`pingapp/gone.py` and bench/nothing.py; https://example.org/tests/x is a URL; "
        "api/test_a.py::test_y and unit/test_gone.py"
    )
    assert missing_paths(text, tmp_path) == ["pingapp/gone.py", "bench/nothing.py"]
    assert missing_paths(text, tmp_path, tests_relative=True) == [
        "pingapp/gone.py",
        "bench/nothing.py",
        "unit/test_gone.py",
    ]


# Environment variables: docs/configuration.md names only what something reads, and
# every setting pingapp reads is there.

#: Variables that are neither pingapp's settings nor Reflex's nor OpenTelemetry's, and
#: the file of this repository that reads each.
READ_HERE = {
    "FRONTEND_PORT": "Makefile",
    "BACKEND_PORT": "Makefile",
    "PUBLIC_URL": "Makefile",
    "REFLEX_LOGLEVEL": "Makefile",
    "BACKEND_HOST": "rxconfig.py",
    "NPM_CONFIG_REGISTRY": "rxconfig.py",
}
#: Variables Reflex reads in its own code rather than through its Config or its
#: EnvironmentVariables, and the module of the `reflex` package that reads each.
READ_BY_REFLEX_CODE = {"GRANIAN_WORKERS": "utils/exec.py"}


def setting_names() -> set[str]:
    """Every variable pingapp reads: Settings' fields upper-cased, and the embedded
    provider's IDP_* settings (with the names they are also read under)."""
    names = {name.upper() for name in Settings.model_fields}
    prefix = str(IdpSettings.model_config.get("env_prefix", ""))
    for name, field in IdpSettings.model_fields.items():
        names.add(f"{prefix}{name}".upper())
        choices = getattr(field.validation_alias, "choices", [])
        names.update(choice for choice in choices if isinstance(choice, str))
    return names


def reflex_names() -> set[str]:
    """Reflex's variables: `REFLEX_` and a Config field (REFLEX_REDIS_URL,
    REFLEX_API_URL, ...), and its EnvironmentVariables (REFLEX_CHECK_LATEST_VERSION)."""
    fields = {f"REFLEX_{field.name.upper()}" for field in dataclasses.fields(BaseConfig)}
    return fields | {name for name in vars(EnvironmentVariables) if name.startswith("REFLEX_")}


def otel_names() -> set[str]:
    """The OpenTelemetry SDK's variables (OTEL_EXPORTER_OTLP_ENDPOINT, ...)."""
    return {name for name in vars(otel_variables) if name.startswith("OTEL_")}


def known_variables() -> set[str]:
    return (
        setting_names() | reflex_names() | otel_names() | set(READ_HERE) | set(READ_BY_REFLEX_CODE)
    )


def variables_named(text: str) -> list[str]:
    """The variable names a page writes, in order, once each."""
    return list(dict.fromkeys(VARIABLE.findall(text)))


def unknown_variables(text: str, known: set[str]) -> list[str]:
    return [name for name in variables_named(text) if name not in known]


def test_the_configuration_page_names_only_variables_something_reads() -> None:
    named = variables_named(CONFIGURATION.read_text(encoding="utf-8"))
    assert "AUTH_ISSUER" in named  # the page was read
    unknown = [name for name in named if name not in known_variables()]
    assert not unknown, f"docs/configuration.md names variables nothing reads: {unknown}"


def test_the_configuration_page_documents_every_setting() -> None:
    named = set(variables_named(CONFIGURATION.read_text(encoding="utf-8")))
    undocumented = sorted(setting_names() - named)
    assert not undocumented, f"settings missing from docs/configuration.md: {undocumented}"


def test_the_variables_read_here_are_read_where_said() -> None:
    for name, file in READ_HERE.items():
        text = (ROOT / file).read_text(encoding="utf-8")
        assert re.search(rf"\b{name}\b", text), f"{file} does not read {name}"
    spec = importlib.util.find_spec("reflex")
    assert spec is not None
    assert spec.submodule_search_locations is not None
    package = Path(next(iter(spec.submodule_search_locations)))
    for name, module in READ_BY_REFLEX_CODE.items():
        text = (package / module).read_text(encoding="utf-8")
        assert f'"{name}"' in text, f"reflex/{module} does not read {name}"


def test_the_known_variables_are_found() -> None:
    assert {"AUTH_ISSUER", "IDP_USERS", "IDP_REDIS_URL", "REFLEX_REDIS_URL"} <= setting_names()
    assert {"REFLEX_API_URL", "REFLEX_CORS_ALLOWED_ORIGINS", "REFLEX_BUN_PATH"} <= reflex_names()
    assert "REFLEX_CHECK_LATEST_VERSION" in reflex_names()
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in otel_names()


def test_an_unknown_variable_is_reported() -> None:
    text = (
        "| `AUTH_ISSUER` | x |\n| `AUTH_ISUER` | a typo |\n`REFLEX_REDIS_URL=redis://…` "
        "`{AUTH0_DOMAIN}` `X-Forwarded-For` `DPoP-Nonce` RS256 `OTEL_*` `GRANIAN_WORKERZ`"
    )
    assert variables_named(text) == [
        "AUTH_ISSUER",
        "AUTH_ISUER",
        "REFLEX_REDIS_URL",
        "AUTH0_DOMAIN",
        "GRANIAN_WORKERZ",
    ]
    assert unknown_variables(text, known_variables()) == ["AUTH_ISUER", "GRANIAN_WORKERZ"]


# The README: short, the command CI runs, a link to every docs page.


def test_the_readme_is_short() -> None:
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, (
        f"README.md is {size} bytes (at most {README_MAX_BYTES}): move the detail to docs/"
    )


def ci_command() -> str:
    """What `.ci/run` executes: its `exec` line."""
    found = re.search(r"^exec[ \t]+(.+?)[ \t]*$", (ROOT / ".ci" / "run").read_text(), re.MULTILINE)
    assert found, ".ci/run has no exec line"
    return found.group(1)


def test_the_readme_shows_the_command_ci_runs() -> None:
    command = ci_command()
    assert command == "make test"
    blocks = FENCE.findall(README.read_text(encoding="utf-8"))
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    assert any(line == command or line.startswith(f"{command} ") for line in lines), (
        f"README.md shows no code line running `{command}`, the command .ci/run runs"
    )


def pages_linked_from(page: Path) -> set[Path]:
    """The files `page` links to (relative links; anchors dropped)."""
    targets = LINK.findall(prose(page.read_text(encoding="utf-8")))
    return {
        (page.parent / target.partition("#")[0]).resolve()
        for target in targets
        if target.partition("#")[0] and not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE)
    }


def unlinked_pages(readme: Path, docs: list[Path]) -> list[str]:
    linked = pages_linked_from(readme)
    return [doc.name for doc in docs if doc.resolve() not in linked]


def test_the_readme_links_every_docs_page() -> None:
    unlinked = unlinked_pages(README, DOCS)
    assert not unlinked, f"README.md links no way to these docs pages: {unlinked}"


def test_an_unlinked_page_is_reported(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    pages = [tmp_path / "docs" / name for name in ("a.md", "b.md", "c.md")]
    for page in pages:
        page.write_text("# Page\n", encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(
        "[a](docs/a.md#page) `[b](docs/b.md)` only in code\n```\n[c](docs/c.md)\n```\n",
        encoding="utf-8",
    )
    assert unlinked_pages(readme, pages) == ["b.md", "c.md"]
