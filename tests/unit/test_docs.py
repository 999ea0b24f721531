"""The README, docs/*.md and .env.example name only things that exist.

Relative links resolve to a file or folder of the repository, and each `#anchor` to a
heading of its target (GitHub's slugs); every `make <target>` shown in code is a
target of the Makefile; every variable `.env.example` sets or shows commented out is
a setting pingapp reads; every path of the README's layout listing exists. Files are
read as text: nothing is started and nothing leaves the machine.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from pingapp.devidp.config import IdpSettings
from pingapp.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]

FENCE = re.compile(r"^```.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
MAKE = re.compile(r"(?<![\w$(-])make[ \t]+([a-z][a-z0-9_-]*)")
RULE = re.compile(r"^([a-z][a-z0-9_-]*)[ \t]*:(?!=)", re.MULTILINE)
ENV_LINE = re.compile(r"^#?[ \t]*([A-Z][A-Z0-9_]*)=", re.MULTILINE)


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


def test_env_example_names_only_real_settings() -> None:
    named = set(ENV_LINE.findall((ROOT / ".env.example").read_text(encoding="utf-8")))
    assert named, "no variable found in .env.example"
    unknown = sorted(named - setting_names())
    assert not unknown, f".env.example names variables pingapp does not read: {unknown}"


def layout_paths() -> list[str]:
    """The paths of the README's layout listing (the code block under "How it is laid
    out"): a top-level line names one or more paths before its description (two or
    more spaces); a line indented by two spaces names files of the folder above it,
    comma-separated; deeper lines continue a description."""
    section = README.read_text(encoding="utf-8").split("\n## How it is laid out", 1)[1]
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


def test_every_path_of_the_readme_layout_exists() -> None:
    paths = layout_paths()
    assert "pingapp/auth/routes.py" in paths  # the listing was read
    missing = [path for path in paths if not (ROOT / path).exists()]
    assert not missing, f"the README's layout lists paths that do not exist: {missing}"
