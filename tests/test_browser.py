"""The panels in a real browser: JupyterLab in headless Chromium, driven by Playwright.

Starts JupyterLab on a free localhost port, opens notebooks built by ``browser_notebook.py`` (tiny
model, seconds), runs all cells, then moves sliders and presses buttons with the mouse and reads the
plots back from the page. Only localhost requests are allowed. Screenshots go to ``test-artifacts/``.
Skipped, with the reason, when Debian's chromium (``apt-get install chromium``) or playwright is missing.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from lesson_lib.projector import PRINTED_COLUMNS
from tests.browser_notebook import LIVE_STEPS, READY_MARK, build, build_lesson_cells

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "browser"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"]
PANELS = ("parameter-explorer", "live-training", "delta-w-explorer", "gate-board", "switchboard")
LOCAL = ("http://127.0.0.1", "http://localhost", "data:", "blob:")

pytestmark = pytest.mark.browser
pw = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
if not Path(CHROMIUM).exists():
    pytest.skip(f"chromium not found at {CHROMIUM}: install it with `apt-get install chromium` "
                "(or set CHROMIUM=/path/to/chromium)", allow_module_level=True)

KERNEL_IDLE = """() => { try { return window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status
                   === 'idle' } catch (e) { return false } }"""
FAILED = r"Traceback|SyntaxError|IndentationError"  # a cell's error (a syntax error shows no traceback)
DONE_OR_FAILED = f"""(mark) => Array.from(document.querySelectorAll('.jp-OutputArea-output')).some(o =>
                    o.innerText.includes(mark) || /{FAILED}/.test(o.innerText))"""
PLOT = """([panel, i]) => { const gd = document.querySelectorAll(`.${panel} .js-plotly-plot`)[i];
           return gd ? {title: String(gd.layout?.title?.text || ''), data: JSON.stringify(gd.data?.map(t =>
           [t.x, t.y, t.z]))} : null }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lab_settings(cfg: Path) -> None:
    """No news toast, and no notebook windowing (every cell stays in the page, so every plot can be read)."""
    settings = {"apputils-extension/notification": '{"fetchNews": "false"}',
                "notebook-extension/tracker": '{"windowingMode": "none"}'}
    for name, text in settings.items():
        folder, file = name.split("/")
        path = cfg / "settings" / "@jupyterlab" / folder
        path.mkdir(parents=True, exist_ok=True)
        (path / f"{file}.jupyterlab-settings").write_text(text)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root, cfg = tmp_path_factory.mktemp("labroot"), tmp_path_factory.mktemp("labcfg")
    build(root / "panels_widget.ipynb", widget=True)
    build(root / "panels_static.ipynb", widget=False, panels=("explorer", "live", "switch"))
    build(root / "panels_laptop.ipynb", widget=True, live_steps=20)
    build(root / "panels_projector.ipynb", widget=True, live_steps=20, extra="ll.projector()")
    build_lesson_cells(root / "lesson_cells_laptop.ipynb")
    build_lesson_cells(root / "lesson_cells_projector.ipynb", extra="ll.projector()")
    _lab_settings(cfg)
    port, token = _free_port(), "lesson-browser-test"
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(cfg / "config"), JUPYTER_RUNTIME_DIR=str(cfg / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(cfg / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(cfg / "ws"),
               LESSON_FAST="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env.pop("LESSON_FIGURES", None)
    log = open(cfg / "lab.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--ip", "127.0.0.1",
                             f"--port={port}", "--allow-root", f"--ServerApp.token={token}",
                             f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
                             "--LabApp.news_url=None",
                             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
                            env=env, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(base, token, proc, cfg / "lab.log")
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(cfg / "lab.log", ARTIFACTS / "lab.log")


def _wait_for_server(base: str, token: str, proc, log: Path) -> None:
    for _ in range(240):
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1)
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail("jupyter lab did not start in 120 s")


SCREENS = {  # name: (viewport in CSS pixels, device scale): a laptop, and a 1280×720 projector zoomed to 125 %
    "laptop": ({"width": 1400, "height": 900}, 1.0),
    "projector": ({"width": 1024, "height": 576}, 1.25),
}


def _context(p, viewport: dict, scale: float = 1.0):
    """A headless Chromium page of ``viewport`` CSS pixels at ``scale`` that may reach only localhost."""
    ctx = p.chromium.launch_persistent_context(tempfile.mkdtemp(), executable_path=CHROMIUM, headless=True,
                                               args=ARGS, viewport=viewport, device_scale_factor=scale)
    blocked: list[str] = []

    def only_local(route):
        if route.request.url.startswith(LOCAL):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    ctx.route("**/*", only_local)
    page = ctx.pages[0]
    page.errors, page.blocked = [], blocked
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    return ctx, page


@pytest.fixture
def browser():
    with pw.sync_playwright() as p:
        ctx, page = _context(p, {"width": 1500, "height": 1400})
        yield page
        ctx.close()


@contextlib.contextmanager
def _on_screen(lab, screen: str, name: str):
    """A page the size of ``screen`` (SCREENS) with notebook ``name`` opened and run; closed afterwards."""
    base, token = lab
    viewport, scale = SCREENS[screen]
    with pw.sync_playwright() as p:
        ctx, page = _context(p, viewport, scale)
        try:
            print(f"{screen}: run all cells {_open_and_run(page, base, token, name):.1f} s")
            yield page
        finally:
            ctx.close()


def _url(base: str, token: str, name: str) -> str:
    """The notebook in a workspace of its own, so no other notebook's panels are in the page."""
    return f"{base}/lab/workspaces/{Path(name).stem}/tree/{name}?token={token}"


def _open_and_run(page, base: str, token: str, name: str) -> float:
    """Open notebook ``name``, run all cells, wait for the last one; returns the seconds it took."""
    start = time.perf_counter()
    page.goto(_url(base, token, name))
    page.wait_for_function(KERNEL_IDLE, timeout=120_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(DONE_OR_FAILED, arg=READY_MARK, timeout=240_000)
    failed = page.locator(".jp-OutputArea-output", has_text=re.compile(FAILED)).all_inner_texts()
    assert not failed, f"a notebook cell failed:\n{failed[0][-3000:]}"
    page.wait_for_timeout(1500)
    return time.perf_counter() - start


def _plot(page, panel: str, i: int = 0) -> dict | None:
    return page.evaluate(PLOT, [panel, i])


def _drag(page, handle, fraction: float) -> None:
    """Drag a noUi slider handle to ``fraction`` of its track with the mouse."""
    handle.scroll_into_view_if_needed()
    track = handle.locator("xpath=ancestor::*[contains(@class,'noUi-target')]").bounding_box()
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] * fraction, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()


def _wait_changed(page, panel: str, before: dict, i: int = 0, timeout: float = 30.0) -> float:
    """Seconds until plot ``i`` of ``panel`` shows other data or another title than ``before``."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        now = _plot(page, panel, i)
        if now and now != before:
            return time.perf_counter() - start
        page.wait_for_timeout(50)
    raise AssertionError(f"the plot of {panel} did not change within {timeout} s")


def _panel_errors(page) -> list[str]:
    return page.locator(".lesson-panel .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
                        ).all_inner_texts()


def _stop_a_live_run(page) -> str:
    """Press Train, wait for the curve to grow, press Stop; returns the results table's text."""
    page.locator(".lesson-live-training button", has_text="Train").click()
    page.wait_for_function("""() => { const gd = document.querySelector('.lesson-live-training .js-plotly-plot');
                              return gd && gd.data && gd.data[0].x && gd.data[0].x.length >= 5 }""", timeout=90_000)
    page.locator(".lesson-live-training button", has_text="Stop").click()
    table = page.locator(".lesson-live-training .lesson-table")
    table.filter(has_text="stopped").wait_for(timeout=60_000)
    return table.inner_text()


def _shoot(page, name: str, panels: tuple[str, ...] = ()) -> list[Path]:
    """A screenshot of the page, and for each panel in ``panels`` the screen a person sees when the panel's
    top is scrolled to the top of the notebook."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    paths = [ARTIFACTS / f"{name}.png"]
    page.screenshot(path=str(paths[0]))
    for panel in panels:
        paths.append(ARTIFACTS / f"{name}_{panel}.png")
        page.locator(f".lesson-{panel}").evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(300)
        page.screenshot(path=str(paths[-1]))
    return paths


def _check_all_rendered(page) -> None:
    for panel in PANELS:
        assert page.locator(f".lesson-{panel}").count() == 1, panel
    assert _plot(page, "lesson-parameter-explorer")["title"].startswith("Trainable parameters: LoRA r=8")
    assert page.locator(".lesson-live-training .js-plotly-plot").count() == 2  # curve, accuracy vs parameters
    assert page.locator(".lesson-delta-w-explorer .js-plotly-plot").count() == 4  # spectrum, ΔW, rank, φ
    assert page.locator(".lesson-gate-board .js-plotly-plot").count() == 1
    assert "unchanged" in page.locator(".lesson-switchboard").inner_text()


def _drag_and_time(page, panel: str, fraction: float, plot: int = 0) -> float:
    before = _plot(page, f"lesson-{panel}", plot)
    _drag(page, page.locator(f".lesson-{panel} .widget-slider .noUi-handle").first, fraction)
    return _wait_changed(page, f"lesson-{panel}", before, plot)


def _check_other_controls(page) -> None:
    """ΔW rank slider, a gate slider and the switchboard's task buttons each change what is shown."""
    print(f"ΔW explorer: rank slider → accuracy plot in {_drag_and_time(page, 'delta-w-explorer', 0.0, 0):.2f} s")
    print(f"gate board: gate slider → heatmap in {_drag_and_time(page, 'gate-board', 0.0):.2f} s")
    first = page.locator(".lesson-switchboard .lesson-table").inner_text()
    page.locator(".lesson-switchboard .widget-toggle-buttons button", has_text="sentiment").click()
    page.wait_for_function(f"() => document.querySelector('.lesson-switchboard .lesson-table').innerText !== "
                           f"{first!r}", timeout=30_000)
    assert "unchanged" in page.locator(".lesson-switchboard").inner_text()


def _second_window(page, base: str, token: str, name: str):
    """Open the same notebook in a second tab (same kernel), as a lecturer's projector window would."""
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_timeout(1000)
    other = page.context.new_page()
    other.goto(_url(base, token, name))
    other.wait_for_function(KERNEL_IDLE, timeout=120_000)
    other.wait_for_function("() => document.querySelectorAll('.lesson-live-training .js-plotly-plot').length > 1",
                            timeout=60_000)
    other.wait_for_timeout(2000)
    return other


def test_all_panels_render_and_respond_with_figure_widgets(lab, browser):
    base, token = lab
    page = browser
    print(f"run all cells: {_open_and_run(page, base, token, 'panels_widget.ipynb'):.1f} s")
    _check_all_rendered(page)
    _shoot(page, "widget_initial")
    seconds = _drag_and_time(page, "parameter-explorer", 0.75)
    title = _plot(page, "lesson-parameter-explorer")["title"]
    print(f"parameter explorer: drag → plot redrawn {seconds:.2f} s after release; title now {title!r}")
    assert "LoRA r=8 " not in title
    text = _stop_a_live_run(page)
    print("results table after Stop:", text.replace("\n", " | "))
    steps = int(text.split("stopped")[0].split()[-1])
    assert 0 < steps < LIVE_STEPS
    _check_other_controls(page)
    print("screenshots:", *_shoot(page, "widget_after", PANELS))
    assert not _panel_errors(page), _panel_errors(page)
    assert not page.errors, page.errors
    assert not page.blocked, f"the page asked for non-local resources: {page.blocked}"

    # a second window must show the figures as they are now, not as they were built (widgets.resync)
    now = {p: _plot(page, f"lesson-{p}") for p in ("parameter-explorer", "live-training")}
    other = _second_window(page, base, token, "panels_widget.ipynb")
    assert {p: _plot(other, f"lesson-{p}") for p in now} == now
    print("screenshots:", *_shoot(other, "widget_second_window", ("parameter-explorer", "live-training")))


def test_static_fallback_renders_and_updates(lab, browser):
    base, token = lab
    page = browser
    print(f"run all cells (static): {_open_and_run(page, base, token, 'panels_static.ipynb'):.1f} s")
    assert "figures: static" in page.locator(".jp-OutputArea-output").first.inner_text()
    assert page.locator(".lesson-parameter-explorer .js-plotly-plot").count() == 1
    seconds = _drag_and_time(page, "parameter-explorer", 0.75)
    print(f"static parameter explorer: drag → figure redrawn {seconds:.2f} s after release")
    assert page.locator(".lesson-parameter-explorer .js-plotly-plot").count() == 1  # replaced, not appended
    text = _stop_a_live_run(page)
    print("static results table after Stop:", text.replace("\n", " | "))
    assert page.locator(".lesson-live-training .js-plotly-plot").count() == 2
    print("screenshots:", *_shoot(page, "static", ("parameter-explorer", "live-training", "switchboard")))
    assert not _panel_errors(page), _panel_errors(page)
    assert not page.errors, page.errors
    assert not page.blocked, f"the page asked for non-local resources: {page.blocked}"


# --- what a person needs to read the panels ----------------------------------------------------------------

LAYOUT = """() => {
  const out = [];
  for (const panel of document.querySelectorAll('.lesson-panel')) {
    const kind = [...panel.classList].find(c => c.startsWith('lesson-') && c !== 'lesson-panel');
    const area = panel.closest('.jp-OutputArea-output').getBoundingClientRect();
    const wide = [...panel.querySelectorAll('*')].filter(e => e.getBoundingClientRect().width > 0 &&
                   e.getBoundingClientRect().right > area.right + 2 && !e.closest('.modebar-container'))
                 .map(e => e.className.baseVal ?? e.className).slice(0, 3);
    const status = panel.querySelector('.lesson-status')?.closest('.widget-html');
    const control = panel.querySelector('.widget-slider, .widget-toggle-button, .widget-dropdown, button');
    const gap = status && control ? Math.abs(status.getBoundingClientRect().top -
                                             control.getBoundingClientRect().top) : 0;
    const ticks = [...panel.querySelectorAll('.js-plotly-plot')].map(gd => {
      const counts = {};
      gd.querySelectorAll('g[class$="tick"]').forEach(g => {
        const text = g.querySelector('text');
        const kind = g.getAttribute('class');
        if (text && text.textContent.trim()) counts[kind] = (counts[kind] || 0) + 1;
      });
      return Math.max(0, ...Object.values(counts));
    });
    const clipped = [...panel.querySelectorAll('.js-plotly-plot')].flatMap(gd => {
      const box = gd.getBoundingClientRect();  // the figure, and the output area that may clip it
      const out = gd.closest('.jp-OutputArea-output')?.getBoundingClientRect() ?? box;
      const left = Math.max(box.left, out.left), right = Math.min(box.right, out.right);
      return [...gd.querySelectorAll('.gtitle, .g-xtitle text, .g-ytitle text')].filter(t => {
        const r = t.getBoundingClientRect();
        return r.width > 0 && (r.left < left - 2 || r.right > right + 2 || r.top < box.top - 2);
      }).map(t => t.textContent);
    });
    out.push({kind, wide, gap, ticks, clipped, areaWidth: area.width});
  }
  return out;
}"""


@pytest.mark.parametrize("screen", list(SCREENS))
def test_panels_are_readable_on_a_laptop_and_on_a_projector(lab, screen):
    """At 1400×900 and at 1280×720 zoomed to 125 % (projector mode on): nothing sticks out of the output area,
    no figure title is cut off at the figure's edge, each panel's status line (its answer) is within one screen
    of its first control, at most 15 tick labels on any axis, no warning in any output, and two runs with the
    same settings get different labels."""
    viewport = SCREENS[screen][0]
    with _on_screen(lab, screen, f"panels_{screen}.ipynb") as page:
        for n in (1, 2):  # the same run twice
            page.locator(".lesson-live-training button", has_text="Train").click()
            page.wait_for_function(f"() => document.querySelectorAll('.lesson-live-training .lesson-table tr')"
                                   f".length > {n}", timeout=120_000)
            page.wait_for_timeout(500)
        rows = page.locator(".lesson-live-training .lesson-table tr").all_inner_texts()[1:]
        labels = [r.split("\t")[0] for r in rows]
        print(f"{screen}: runs {labels}")
        assert len(labels) == 2 and len(set(labels)) == 2
        layout = page.evaluate(LAYOUT)
        print("screenshots:", *_shoot(page, f"{screen}", PANELS))
        for panel in layout:
            print(f"{screen} {panel['kind']}: output area {panel['areaWidth']:.0f} px, status "
                  f"{panel['gap']:.0f} px from its control, tick labels per axis ≤ {panel['ticks']}")
            assert not panel["wide"], f"{panel['kind']} sticks out of the output area: {panel['wide']}"
            assert panel["gap"] <= viewport["height"], f"{panel['kind']}: the answer is a screen away"
            assert all(n <= 15 for n in panel["ticks"]), f"{panel['kind']}: {panel['ticks']} tick labels"
            assert not panel["clipped"], f"{panel['kind']}: a title is cut off at the figure's edge: {panel['clipped']}"
        outputs = " ".join(page.locator(".jp-OutputArea-output").all_inner_texts())
        assert "Warning" not in outputs and "not JSON compliant" not in outputs
        assert not _panel_errors(page) and not page.errors, (_panel_errors(page), page.errors)



PICTURES = """() => [...document.querySelectorAll('.jp-OutputArea-output svg')]
  .filter(svg => !svg.closest('.js-plotly-plot')).map(svg => {
    const area = svg.closest('.jp-OutputArea-output').getBoundingClientRect();
    const box = svg.getBoundingClientRect();
    const sizes = [...svg.querySelectorAll('text')].map(t => t.getBoundingClientRect().height).filter(h => h > 0);
    return {width: box.width, area: area.width, smallest: Math.min(...sizes), texts: sizes.length};
  })"""


# The lessons' printed tables (browser_notebook.TABLE_CELLS) and a string only each one's output contains
TABLE_HEADS = [("06 comparison", "precompute compare_tweets"), ("06 sweep", "precompute sweep_tweets"),
               ("07 questions", "held out (never trained on)"), ("07 sweep", "precompute instruct_tasks")]
CLOSE_FILE_BROWSER = """() => { if (!window.jupyterapp.shell.leftCollapsed)
                         window.jupyterapp.commands.execute('application:toggle-left-area') }"""
TABLES = """(heads) => heads.map(head => {
    // a table row is a printed line indented by two spaces; each must sit on one line of the screen
    const pre = [...document.querySelectorAll('.jp-OutputArea-output pre')].find(p => p.innerText.includes(head));
    if (!pre) return {head, rows: 0, wrapped: []};
    const style = getComputedStyle(pre), ctx = document.createElement('canvas').getContext('2d');
    ctx.font = `${style.fontSize} ${style.fontFamily}`;
    const width = pre.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const walker = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT), rows = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      let start = 0;
      for (const line of node.data.split('\\n')) {
        if (line.startsWith('  ') && line.trim()) {
          const range = document.createRange();
          range.setStart(node, start);
          range.setEnd(node, start + line.length);
          const tops = new Set([...range.getClientRects()].map(box => Math.round(box.top)));
          rows.push({line, screenLines: tops.size});
        }
        start += line.length + 1;
      }
    }
    return {head, rows: rows.length, longest: Math.max(...rows.map(r => r.line.length)),
            fit: Math.floor(width / ctx.measureText('x').width),
            wrapped: rows.filter(r => r.screenLines !== 1).map(r => r.line)};
  })"""


@pytest.mark.parametrize("screen", list(SCREENS))
def test_method_pictures_hints_and_answers_are_readable(lab, screen):
    """The five pictures fit the output area and their smallest text is at least 11 px on screen; a hint
    stays folded until the student opens it; a predict-then-run answer shows the guess beside the measurement;
    the lessons' printed tables fit the output area, no line wrapped."""
    with _on_screen(lab, screen, f"lesson_cells_{screen}.ipynb") as page:
        pictures = page.evaluate(PICTURES)
        print(f"{screen}: pictures", [(round(x["width"]), round(x["area"]), round(x["smallest"], 1)) for x in pictures])
        assert len(pictures) == 5
        for picture in pictures:
            assert picture["width"] <= picture["area"] + 1 and picture["texts"] > 10
            assert picture["smallest"] >= 11, picture
        hint = page.locator(".jp-RenderedMarkdown details", has_text="Hint")
        inside = hint.locator("p", has_text="HIDDEN-HINT-TEXT")
        assert hint.count() == 1 and not inside.is_visible()
        hint.locator("summary").click()
        assert inside.is_visible()
        answer = " ".join(page.locator(".jp-OutputArea-output").all_inner_texts())
        assert "measured 770; you guessed 1,000: too high" in answer
        # printed results (verdicts, tables, answers) grow with projector mode
        printed = page.locator(".jp-OutputArea-output pre", has_text="you guessed").first
        size = float(printed.evaluate("e => getComputedStyle(e).fontSize").rstrip("px"))
        assert size >= 19 if screen == "projector" else size <= 14, (screen, size)
        if screen == "projector":  # as wide as the output area allows (its padding aside)
            assert all(p["width"] >= p["area"] - 24 for p in pictures), pictures
        if screen == "projector":  # presented as docs/lecturer.md says: the file browser closed (Ctrl+B)
            page.evaluate(CLOSE_FILE_BROWSER)
            page.wait_for_timeout(1000)
        tables = page.evaluate(TABLES, [marker for _, marker in TABLE_HEADS])
        print(f"{screen}: tables (rows, longest row, characters that fit)",
              [(t["rows"], t.get("longest"), t.get("fit")) for t in tables])
        for (cell, _), table, least in zip(TABLE_HEADS, tables, (16, 16, 9, 5)):
            assert table["rows"] >= least, (cell, table)  # the table is there
            assert not table["wrapped"], f"{screen}: rows of {cell} wrap: {table['wrapped']}"
            assert table["fit"] >= PRINTED_COLUMNS, (screen, table["fit"])  # the width the notebooks' rows keep to
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for cell, head in TABLE_HEADS:  # to read them as the room will
            table = page.locator(".jp-OutputArea-output pre", has_text=head).first
            table.screenshot(path=str(ARTIFACTS / f"table_{screen}_{cell.replace(' ', '_')}.png"))
        for i, svg in enumerate(page.locator(".jp-OutputArea-output svg").all()[:5]):
            svg.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / f"lesson_cells_{screen}_{i}.png"))
        assert not page.errors, page.errors
