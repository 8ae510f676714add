"""Every kind of report rendered in a real browser: headless Chromium (Debian's package, which
`make` installs), driven by playwright's Python package pointed at /usr/bin/chromium. Each page
must load with zero console errors and no request but itself, show every plot non-empty, and
give a screenshot that is not blank. A missing browser fails these tests: skipping is not
passing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from reports.accuracy import TrainResult, join
from reports.compare import Run
from reports.html import comparison_page, run_page, sweep_page

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("HWSIM_CHROMIUM", "/usr/bin/chromium")
# Without the networking switches Chromium tries to reach Google's services at start and logs
# the refusals; a fresh profile keeps runs independent.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `make test` (it installs Debian's chromium) "
                    "or `apt-get install chromium`")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="hwsim-chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                       args=FLAGS, viewport={"width": 1280, "height": 900})
        try:
            yield context
        finally:
            context.close()


def check_page(browser, html: str, path: Path, figures: list[str]) -> dict:
    """Open `html` from a file; return what was seen. Asserts the page's own contract."""
    path.write_text(html, encoding="utf-8")
    page = browser.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    page.on("request", lambda r: requests.append(r.url))
    url = path.resolve().as_uri()
    page.goto(url, wait_until="load")
    assert errors == [], errors
    assert requests == [url], requests                     # self-contained: nothing else fetched
    shown = page.eval_on_selector_all("figure.plot", "els => els.map(e => e.id)")
    assert shown == figures
    for fig in figures:
        svg = page.query_selector(f"figure#{fig} > svg")
        assert svg is not None, fig
        box = svg.bounding_box()
        assert box["width"] > 200 and box["height"] > 80, (fig, box)
        drawn = svg.eval_on_selector_all("path, use, rect, line, polyline", "els => els.length")
        assert drawn > 10, (fig, drawn)
    shot = path.with_suffix(".png")
    page.screenshot(path=str(shot), full_page=True)
    text = page.inner_text("body")
    page.close()
    assert_not_blank(shot)
    return {"text": text, "screenshot": shot}


def assert_not_blank(png: Path) -> None:
    from PIL import Image

    with Image.open(png) as im:
        rgb = im.convert("RGB")
        w, h = rgb.size
        assert w >= 1000 and h >= 900
        small = rgb.resize((w // 4, h // 4))
    colours = small.getcolors(maxcolors=small.width * small.height)   # [(count, (r, g, b))]
    total = small.width * small.height
    background = max(colours)[1]
    ink = sum(n for n, c in colours if sum(abs(a - b) for a, b in zip(c, background)) > 60)
    assert ink / total > 0.03, f"{png}: {ink / total:.1%} of the page differs from its background"
    assert len(colours) > 50, f"{png}: only {len(colours)} colours"


RUN_FIGURES = ["energy-phase", "energy-op", "traffic", "memory-timeline", "memory-peak-phase", "roofline",
               "time-per-unit"]


def test_run_page_of_an_npu(browser, tmp_path, simulated):
    seen = check_page(browser, run_page(simulated("sine_maml", "edge-npu")), tmp_path / "npu.html", RUN_FIGURES)
    assert "MAC efficiency" in seen["text"] and "not available for this target" in seen["text"]


def test_run_page_of_a_fabric(browser, tmp_path, simulated):
    seen = check_page(browser, run_page(simulated("sine_maml", "zcu102-like")), tmp_path / "fpga.html", RUN_FIGURES)
    assert "Fabric configurations" in seen["text"] and "dsp used / available" in seen["text"]


def test_comparison_page_with_accuracy_and_hostile_names(browser, tmp_path, simulated):
    runs = []
    for stem, algo in (("sine_maml", "maml"), ("sine_fomaml", "fomaml")):
        for hw in ("edge-npu", "cgra-8x8"):
            r = simulated(stem, hw)
            runs += [Run(algo, "meta_train", r), Run(algo, "adapt", r)]
    trains = [TrainResult(f"{a} <img src=x onerror=console.error(1)>", {"algorithm": a}, "sinusoid", "mse",
                          {1: (m, 0.05, 600)}, 1000) for a, m in (("maml", 0.55), ("fomaml", 0.85))]
    points = join(trains, runs, 1)
    title = "<script>console.error('injected')</script> comparison"
    seen = check_page(browser, comparison_page(runs, title=title, notes=["a | b"], accuracy=points),
                      tmp_path / "cmp.html",
                      ["accuracy-cost", "runs-energy", "runs-latency-energy", "runs-memory", "runs-memory-timelines"])
    assert "<script>console.error('injected')</script>" in seen["text"]    # shown as text, not run
    assert "onerror" in seen["text"]


def test_sweep_page(browser, tmp_path):
    rows = [{"point": i, "array.rows": 16 * (1 + i % 3), "model": "maml/meta_train", "cycles": 1000 + 97 * i,
             "seconds": (1000 + 97 * i) * 1e-9, "energy_pj": 5e6 / (1 + i % 5) + 1e4 * i} for i in range(30)]
    front = rows[:3]
    seen = check_page(browser, sweep_page(rows, front, title="sweep"), tmp_path / "sweep.html", ["sweep-scatter"])
    assert "Pareto set" in seen["text"]


def test_the_check_catches_errors_requests_and_missing_plots(browser, tmp_path):
    # the checks above can fail: a console error, a fetched resource, an empty plot
    with pytest.raises(AssertionError, match="console.error"):
        check_page(browser, "<html><body><script>console.error('x')</script></body></html>", tmp_path / "a.html", [])
    with pytest.raises(AssertionError):
        check_page(browser, "<html><body><img src='missing.png'></body></html>", tmp_path / "b.html", [])
    with pytest.raises(AssertionError):
        check_page(browser, "<html><body><figure class='plot' id='p'><svg width='1' height='1'></svg></figure>"
                   "</body></html>", tmp_path / "c.html", ["p"])
