"""The built page in a real browser (Debian chromium + chromedriver through selenium): hostile names
render as literal text, no script of theirs runs, nothing is fetched, sorting works both ways, the
plots are visible."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.cost(23),  # seconds on 2 cores: files start longest first (tests/conftest.py)
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                       reason="chromium/chromedriver not installed (apt-get install -y chromium chromium-driver)"),
]

HOSTILE = [
    "<script>window.__pwned = 1; document.title = 'pwned'</script>",
    "<img src=x onerror=\"window.__pwned = 2\">",
    "\" onmouseover=\"window.__pwned=3\" x=\"",
    "</td></tr></table><script>window.__pwned=4</script>",
    "<!-- a | b `c` -->",
    "javascript:window.__pwned=5",
    "evil\u202e" + "gnp.exe",
    "$\\frac{1}{0}$ costs $5",
]


@pytest.fixture(scope="module")
def driver():
    pytest.importorskip("selenium", reason="selenium not installed (pip install 'xalbench[leaderboard]')")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update", "--no-first-run",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield d
    d.quit()


def _rows():
    from xalbench.leaderboard.stats import Row, Stat

    rows = []
    for i, name in enumerate(HOSTILE):
        value = 0.30 + 0.05 * ((i * 3) % 7)
        aulc = {"acc": Stat(value, 0.02, 2), "dice": Stat(None, None, 0)}
        delta = {"acc": Stat(value - 0.4, 0.01, 2), "dice": Stat(None, None, 0)}
        rows.append(Row(suite="lb-tiny", status="self-reported", submitter=name, plugin=f"plugin-{i}", version="1.0",
                        dataset="lesions", method=name, n_seeds=2, aulc=aulc, delta=delta,
                        held_out={"acc": None, "dice": None}, held_out_submitted={"acc": None, "dice": None},
                        manifest_sha256="0" * 64))
    return rows


def _open(driver, html: str, tmp_path: Path) -> None:
    page = tmp_path / "index.html"
    page.write_text(html, encoding="utf-8")
    driver.get_log("browser")  # drain
    driver.get(page.resolve().as_uri())


def test_hostile_names_are_text_and_no_script_runs(driver, tmp_path: Path) -> None:
    from xalbench.leaderboard.build import render_html

    html = render_html(_rows(), ["acc", "dice"])
    assert "http://" not in html and "https://" not in html
    _open(driver, html, tmp_path)
    assert driver.title == "xalbench leaderboard"
    assert driver.execute_script("return window.__pwned === undefined")
    from selenium.webdriver.common.by import By

    for column in (3, 4):  # method, submitter: literal text, every character kept
        cells = [td.get_attribute("textContent") for td in
                 driver.find_elements(By.CSS_SELECTOR, f"tbody td:nth-child({column})")]
        assert sorted(cells) == sorted(HOSTILE)
    assert not driver.find_elements(By.CSS_SELECTOR, "tbody script, tbody img, td[onmouseover]")
    # the page's own (hashed) script ran: clicking a header sorts; an injected one would be blocked by the CSP
    headers = driver.find_elements(By.CSS_SELECTOR, "thead th button")
    headers[5].click()
    assert driver.find_element(By.CSS_SELECTOR, "thead th:nth-child(6)").get_attribute("aria-sort") == "ascending"


def test_built_page_sorts_shows_plots_and_fetches_nothing(driver, board: Path, runtime, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from xalbench.leaderboard.build import build
    from xalbench.leaderboard.check import load_reference

    build(board, reference=load_reference(board / "reference.json"), runtime=runtime)
    html = (board / "index.html").read_text(encoding="utf-8")
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert csp and "default-src 'none'" in csp.group(1) and "unsafe-inline" not in csp.group(1)
    assert not re.search(r"(src|href)=\"(https?:)?//", html)

    # sorting in a page with several rows (fabricated, same renderer)
    from xalbench.leaderboard.build import render_html

    _open(driver, render_html(_rows(), ["acc", "dice"]), tmp_path)
    def column(n: int) -> list[float]:
        return [float(td.get_attribute("data-v")) for td in
                driver.find_elements(By.CSS_SELECTOR, f"tbody td:nth-child({n})")]

    button = driver.find_elements(By.CSS_SELECTOR, "thead th button")[5]
    button.click()
    assert column(6) == sorted(column(6))
    button.click()
    assert column(6) == sorted(column(6), reverse=True)

    # the real board: plot visible, no request beyond the file itself, no console errors
    driver.get((board / "index.html").resolve().as_uri())
    img = driver.find_element(By.TAG_NAME, "img")
    assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 100", img)
    png = img.screenshot_as_png
    from PIL import Image

    shot = Image.open(io.BytesIO(png)).convert("L")
    lo, hi = shot.getextrema()
    assert hi - lo > 100, "the plot screenshot is blank"
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
    import json

    requests = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
    urls = {m["params"]["request"]["url"] for m in requests if m.get("method") == "Network.requestWillBeSent"}
    assert urls and all(u.startswith(("file:", "data:")) for u in urls), urls


def test_injected_inline_script_is_blocked_by_the_csp(driver, tmp_path: Path) -> None:
    """Negative control: even markup that bypassed escaping could not run a script."""
    from xalbench.leaderboard.build import render_html

    html = render_html(_rows()[:1], ["acc", "dice"])
    html = html.replace("<h1>", "<script>window.__pwned = 9</script><h1>", 1)
    _open(driver, html, tmp_path)
    assert driver.execute_script("return window.__pwned === undefined")
    assert any("Content Security Policy" in e["message"] for e in driver.get_log("browser"))


LAPTOP = (1366, 768)
FITS = """
const width = document.documentElement.clientWidth;
const out = {doc: document.documentElement.scrollWidth <= window.innerWidth, tables: []};
for (const table of document.querySelectorAll("table")) {
  const heads = Array.from(table.tHead.rows[0].cells);
  const aulc = heads.map((th, i) => th.textContent.startsWith("AULC") ? i : -1).filter(i => i >= 0);
  const cells = aulc.flatMap(i => [heads[i], ...Array.from(table.tBodies[0].rows, r => r.cells[i])]);
  out.tables.push({id: table.id, aulc: aulc.length, rows: table.tBodies[0].rows.length,
                   inside: cells.every(c => c.getBoundingClientRect().right <= width),
                   scrolls: table.parentElement.scrollWidth > table.parentElement.clientWidth,
                   shown: Array.from(table.tBodies[0].rows, r => r.cells[aulc[0]].textContent)});
}
return out;
"""


@pytest.mark.parametrize("page", ["shipped", "hostile"])
def test_the_board_fits_a_laptop_screen(driver, tmp_path: Path, page: str) -> None:
    """At 1366 × 768 nothing scrolls sideways, every table's AULC columns are inside the viewport, AULCs show
    the interval half-width, and n/a rows are listed under their table, not in it."""
    from xalbench.leaderboard.build import render_html

    shipped = Path(__file__).resolve().parents[2] / "leaderboard" / "index.html"
    driver.set_window_size(*LAPTOP)
    try:
        if page == "shipped":
            driver.get(shipped.as_uri())
        else:
            _open(driver, render_html(_rows(), ["acc", "dice"]), tmp_path)
        layout = driver.execute_script(FITS)
    finally:
        driver.set_window_size(1400, 1000)
    assert layout["doc"], "the page scrolls sideways at 1366 px"
    assert layout["tables"] and all(t["aulc"] == 2 and t["rows"] > 0 for t in layout["tables"])
    for table in layout["tables"]:
        assert table["inside"] and not table["scrolls"], table["id"]
        assert all(re.fullmatch(r"\d\.\d{3} ± \d\.\d{3}", text) for text in table["shown"]), table["shown"]
    if page == "shipped":  # its multi-label table has methods the harness does not run there
        from selenium.webdriver.common.by import By

        driver.get(shipped.as_uri())
        assert not [td for td in driver.find_elements(By.CSS_SELECTOR, "tbody td") if "n/a:" in td.text]
        items = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "ul.na li")]
        assert items and all(re.fullmatch(r"\S+ \(.+\): .+", text) for text in items), items  # method (entry): why
        assert any("does not support multi-label" in text for text in items)
        assert any("equal by construction" in text for text in items)  # DUE's losses on 2D data
