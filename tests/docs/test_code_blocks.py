"""Every fenced code block in README.md and docs/ runs, or says why it does not (docs/contributing.md).

* ```python blocks run page by page, in order, in one namespace per page, in a fresh working
  directory. A block titled ``title="pkg/module.py"`` is a file the reader saves: it is written to a
  directory on ``sys.path`` (:mod:`tests.docs.conftest`) and imported, so later blocks import it.
* ```bash / ```sh / ```shell / ```console blocks (console: the ``$ `` lines) run command by command
  and every command must exit 0: ``xalbench …`` in this process through ``xalbench.cli.main`` (one
  torch import for the whole suite), anything else with ``bash``.
* ```toml / ```json blocks must parse; a titled one is written into the working directory.
* A block right after ``<!-- not-run: reason -->`` is skipped; the reason is required.
* Other blocks (no language, ``text``) are displays.

Pages are README.md, docs/**/*.md (without docs/_ext) and the files they include with
``--8<-- "path"`` (pymdownx.snippets), at the place of the include.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.cost(33)  # seconds on 2 cores: files start longest first (tests/conftest.py)

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ("python", "py")
SHELL = ("bash", "sh", "shell", "console")
PARSED = ("toml", "json")

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*?)[ \t]*$")
MARKER = re.compile(r"^[ \t]*<!--[ \t]*not-run:(?P<reason>.*?)-->[ \t]*$")
SNIPPET = re.compile(r"^[ \t]*-{2}8<-{2}[ \t]+\"(?P<path>[^\"]+)\"[ \t]*$")
TITLE = re.compile(r"""\btitle=(?:"(?P<dq>[^"]+)"|'(?P<sq>[^']+)')""")
SHELL_SYNTAX = re.compile(r"[|&;<>()$`*?]")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclasses.dataclass(frozen=True)
class Line:
    text: str
    path: Path
    number: int  # 1-based, in ``path``


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced block: where it starts, its language, title, code and why it is skipped (if it is)."""

    path: Path
    line: int  # the opening fence's line in ``path``
    lang: str
    title: str | None
    code: str
    not_run: str | None

    @property
    def where(self) -> str:
        return f"{_shown(self.path)}:{self.line}"


# ---------------------------------------------------------------------------------------------- collecting
def pages() -> list[Path]:
    """README.md and every Markdown file under docs/ (docs/_ext holds the site's build code)."""
    docs = sorted(p for p in (ROOT / "docs").rglob("*.md") if "_ext" not in p.relative_to(ROOT / "docs").parts)
    return [ROOT / "README.md", *docs]


def expand(path: Path, seen: tuple[Path, ...] = ()) -> list[Line]:
    """``path``'s lines with each ``--8<-- "file"`` replaced by that file's lines (paths from the repo root)."""
    if path in seen:
        raise ValueError(f"{_shown(path)} includes itself through {[str(s) for s in seen]}")
    out: list[Line] = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = SNIPPET.match(text)
        if match:
            target = ROOT / match["path"]
            if not target.is_file():
                raise ValueError(f"{_shown(path)}:{number}: included file {match['path']} does not exist")
            out.extend(expand(target, (*seen, path)))
        else:
            out.append(Line(text, path, number))
    return out


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page`` (includes expanded), in order; a dangling marker is an error."""
    lines = expand(page)
    found: list[Block] = []
    i = 0
    pending: tuple[Line, str] | None = None  # a not-run marker waiting for its fence
    while i < len(lines):
        line = lines[i]
        marker = MARKER.match(line.text)
        opening = FENCE.match(line.text)
        if marker:
            if pending:
                raise ValueError(f"{_where(pending[0])}: a not-run marker that no code block follows")
            reason = marker["reason"].strip()
            if not reason:
                raise ValueError(f"{_where(line)}: say why the block does not run: <!-- not-run: reason -->")
            pending = (line, reason)
        elif opening:
            indent, fence, info = opening["indent"], opening["fence"], opening["info"]
            close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
            j = i + 1
            while j < len(lines) and not close.match(lines[j].text):
                j += 1
            if j == len(lines):
                raise ValueError(f"{_where(line)}: code block never closed")
            body = [_dedent(text.text, len(indent)) for text in lines[i + 1:j]]
            title = TITLE.search(info)
            lang = (info.split()[0].lstrip("{.").rstrip("}") if info.split() else "").lower()
            found.append(Block(line.path, line.number, lang, title and (title["dq"] or title["sq"]),
                               "\n".join(body) + "\n", pending[1] if pending else None))
            pending = None
            i = j
        elif pending and line.text.strip():
            raise ValueError(f"{_where(pending[0])}: a not-run marker must be right before a code block")
        i += 1
    if pending:
        raise ValueError(f"{_where(pending[0])}: a not-run marker that no code block follows")
    return found


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _where(line: Line) -> str:
    return f"{_shown(line.path)}:{line.number}"


def _dedent(text: str, width: int) -> str:
    stripped = len(text) - len(text.lstrip(" \t"))
    return text[min(width, stripped):]


# ---------------------------------------------------------------------------------------------- running
def shell_commands(block: Block) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and console output dropped."""
    lines = block.code.splitlines()
    if block.lang == "console":
        lines = [text[2:] for text in lines if text.startswith("$ ")]
    commands: list[str] = []
    current = ""
    for text in lines:
        if text.rstrip().endswith("\\"):
            current += text.rstrip()[:-1] + " "
            continue
        current += text
        if current.strip() and not current.lstrip().startswith("#"):
            commands.append(current.strip())
        current = ""
    return commands


@contextlib.contextmanager
def environment(assignments: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in assignments}
    os.environ.update(assignments)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_command(command: str, block: Block, cwd: Path) -> None:
    """One shell command: ``xalbench …`` through ``xalbench.cli.main`` here, anything else with bash."""
    words = shlex.split(command, comments=True)
    assignments = {}
    while words and ASSIGNMENT.match(words[0]):
        key, _, value = words.pop(0).partition("=")
        assignments[key] = value
    if words and words[0] == "xalbench" and not SHELL_SYNTAX.search(command.split("#")[0]):
        from xalbench.cli import main

        out, err = io.StringIO(), io.StringIO()
        with environment(assignments), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(words[1:])
            except SystemExit as exc:  # argparse's --help and usage errors
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        output = out.getvalue() + err.getvalue()
    else:
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=300)
        code, output = proc.returncode, proc.stdout + proc.stderr
    assert code == 0, (f"{block.where}: `{command}` exited {code} (mark the block <!-- not-run: reason --> if it "
                       f"cannot run in the tests):\n{output[-3000:]}")


def run_python(block: Block, namespace: dict[str, Any], modules: Path) -> None:
    if block.title:
        if not block.title.endswith(".py"):
            raise ValueError(f"{block.where}: a titled python block must name a .py file, got {block.title!r}")
        target = modules / block.title
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.code, encoding="utf-8")
        name = block.title[:-3].replace("/", ".")
        importlib.invalidate_caches()
        if name in sys.modules:
            importlib.reload(sys.modules[name])
        else:
            importlib.import_module(name)
        return
    # padded so that tracebacks show the page's own lines; no __future__ flags inherited from this module
    code = compile("\n" * block.line + block.code, str(block.path), "exec", dont_inherit=True)
    exec(code, namespace)  # noqa: S102 - executing the documentation is the point of this test


def run_parsed(block: Block, cwd: Path) -> None:
    try:
        tomllib.loads(block.code) if block.lang == "toml" else json.loads(block.code)
    except ValueError as exc:
        raise AssertionError(f"{block.where}: the {block.lang} block does not parse: {exc}") from exc
    if block.title:
        (cwd / block.title).parent.mkdir(parents=True, exist_ok=True)
        (cwd / block.title).write_text(block.code, encoding="utf-8")


def run_page(page: Path, cwd: Path, modules: Path) -> int:
    """Run every runnable block of ``page`` in order; returns how many ran. The page's namespace is a
    module of its own (``__docs__``, in ``sys.modules`` while the page runs), as a script's ``__main__`` is."""
    module = types.ModuleType("__docs__")
    previous = sys.modules.get(module.__name__)
    sys.modules[module.__name__] = module
    try:
        return _run_blocks(page, cwd, modules, module.__dict__)
    finally:
        if previous is None:
            sys.modules.pop(module.__name__, None)
        else:
            sys.modules[module.__name__] = previous


def _run_blocks(page: Path, cwd: Path, modules: Path, namespace: dict[str, Any]) -> int:
    ran = 0
    for block in blocks(page):
        if block.not_run is not None:
            continue
        if block.lang in PYTHON:
            run_python(block, namespace, modules)
        elif block.lang in SHELL:
            for command in shell_commands(block):
                run_command(command, block, cwd)
        elif block.lang in PARSED:
            run_parsed(block, cwd)
        else:
            continue
        ran += 1
    return ran


# ---------------------------------------------------------------------------------------------- tests
PAGES = pages()


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_page_code_blocks_run(page: Path, tmp_path: Path, docs_modules: Path, docs_data_root: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Every unmarked block of the page runs (or parses) without error, in order."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XALBENCH_DATA", str(docs_data_root))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    run_page(page, tmp_path, docs_modules)


def test_python_file_titles_are_unique() -> None:
    """The docs' Python files share one directory on ``sys.path``: one name, one file."""
    seen: dict[str, str] = {}
    for page in PAGES:
        for block in blocks(page):
            if block.lang in PYTHON and block.title and block.not_run is None:
                assert block.title not in seen, f"{block.where}: {block.title} is also written at {seen[block.title]}"
                seen[block.title] = block.where


def test_collector_rules(tmp_path: Path) -> None:
    """Markers skip exactly the next block, need a reason, and may not dangle; includes are expanded;
    an unmarked failing block fails its page."""
    page = tmp_path / "page.md"
    (tmp_path / "inc.md").write_text("```python\nx = 2\n```\n", encoding="utf-8")
    page.write_text(
        "# t\n\n<!-- not-run: needs a GPU -->\n```bash\nnvidia-smi\n```\n\n"
        f'--8<-- "{tmp_path / "inc.md"}"\n\n'
        '```python title="mod.py"\ny = 1\n```\n\n   ```toml\n   a = 1\n   ```\n',
        encoding="utf-8",
    )
    found = blocks(page)
    assert [(b.path.name, b.lang, b.not_run, b.title) for b in found] == [
        ("page.md", "bash", "needs a GPU", None), ("inc.md", "python", None, None),
        ("page.md", "python", None, "mod.py"), ("page.md", "toml", None, None)]
    assert found[3].code == "a = 1\n"

    page.write_text("<!-- not-run: -->\n```bash\nls\n```\n", encoding="utf-8")
    with pytest.raises(ValueError, match="say why"):
        blocks(page)
    page.write_text("<!-- not-run: later -->\n\ntext\n```bash\nls\n```\n", encoding="utf-8")
    with pytest.raises(ValueError, match="right before a code block"):
        blocks(page)

    page.write_text("```bash\nfalse\n```\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="exited 1"):
        run_page(page, tmp_path, tmp_path)
    page.write_text("```python\nraise RuntimeError('rotten example')\n```\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match="rotten example"):
        run_page(page, tmp_path, tmp_path)
    page.write_text("```console\n$ xalbench plugins show no-such-component\nanything\n```\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="exited 2"):
        run_page(page, tmp_path, tmp_path)
