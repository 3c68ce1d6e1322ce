"""The web UI and the HTML report in a real headless Chromium (Debian's chromium + chromedriver).

These tests fail, rather than skip, when Chromium is missing: CI installs
it (`apt-get install chromium chromium-driver`). Screenshots of every view
are saved under test-artifacts/ for people to look at.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    NoAlertPresentException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from gitxp.ui import UIServer
from tests.ui_helpers import HOSTILE, served_repo

CHROMIUM = os.environ.get("GITXP_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("GITXP_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# ignore Chromium's own chatter about software WebGL in a headless VM
NOISE = ("WebGL", "GL Driver", "GPU stall", "swiftshader")


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    if missing:
        pytest.fail(
            f"browser tests need Chromium and its driver; missing {', '.join(missing)}: "
            "install them with `apt-get install -y chromium chromium-driver` "
            "(or point GITXP_TEST_CHROMIUM / GITXP_TEST_CHROMEDRIVER at them)",
            pytrace=False,
        )
    profile = tempfile.mkdtemp(prefix="gitxp-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    # any alert() that ran would set this flag (and leave a dialog open)
    driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument",
        {"source": "window.alert = () => { window.__alerted = true; };"},
    )
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UIServer, dict[str, str]]]:
    with served_repo(tmp_path_factory, "uib") as pair:
        yield pair


def wait(
    driver: webdriver.Chrome, what: str, check: Callable[[Any], Any], timeout: float = 30
) -> Any:
    try:
        # the page re-renders while we look (live updates): a stale element means "look again"
        return WebDriverWait(
            driver,
            timeout,
            poll_frequency=0.1,
            ignored_exceptions=(StaleElementReferenceException,),
        ).until(lambda d: check(d))
    except TimeoutException:
        shot = ARTIFACTS / "timeout.png"
        driver.save_screenshot(str(shot))
        raise AssertionError(f"timed out waiting for {what} (screenshot: {shot})") from None


def console_errors(driver: webdriver.Chrome, expected: tuple[str, ...] = ()) -> list[str]:
    return [
        e["message"]
        for e in driver.get_log("browser")
        if e["level"] == "SEVERE" and not any(n in e["message"] for n in NOISE + expected)
    ]


def no_script_ran(driver: webdriver.Chrome) -> None:
    try:
        driver.switch_to.alert.dismiss()
        raise AssertionError("an alert dialog was opened")
    except NoAlertPresentException:
        pass
    assert driver.execute_script("return window.__alerted === true") is False


def visit(driver: webdriver.Chrome, url: str) -> None:
    """Load *url* as a fresh page (a bare hash change would keep the old page's elements)."""
    driver.get("about:blank")
    driver.get(url)


def shot(driver: webdriver.Chrome, name: str) -> None:
    """Save a screenshot of the whole page (up to 2,400 px tall) as a test artefact."""
    import base64

    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 2400), "scale": 1}
    png = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    (ARTIFACTS / f"ui-{name}.png").write_bytes(base64.b64decode(png["data"]))


def rows(driver: webdriver.Chrome) -> list[Any]:
    return driver.find_elements(By.CSS_SELECTOR, "#runs-table tbody tr[data-id]")


def test_the_runs_table_lists_every_run(browser: webdriver.Chrome, served) -> None:
    server, ids = served
    visit(browser, server.url)
    wait(browser, "three rows", lambda d: len(rows(d)) == 3)
    assert {r.get_attribute("data-id") for r in rows(browser)} == set(ids.values())
    names = [r.find_element(By.CSS_SELECTOR, "td.name").text for r in rows(browser)]
    assert "swift-otter" in names and "long-series" in names
    summary = browser.find_element(By.CSS_SELECTOR, ".summary").text.split()
    assert summary == ["3", "runs", "FINISHED", "3"]
    header = browser.find_element(By.CSS_SELECTOR, "#runs-table thead").text
    assert "loss" in header and "lr" in header
    shot(browser, "runs")
    assert console_errors(browser) == []


def test_a_hostile_run_name_renders_as_text(browser: webdriver.Chrome, served) -> None:
    server, ids = served
    visit(browser, server.url)
    wait(browser, "rows", lambda d: len(rows(d)) == 3)
    hostile = browser.find_element(By.CSS_SELECTOR, f"tr[data-id='{ids['hostile']}'] td.name")
    assert hostile.text.strip().startswith(HOSTILE)
    assert browser.find_elements(By.CSS_SELECTOR, "img") == []
    visit(browser, server.url + f"#/run/{ids['hostile']}")
    wait(browser, "run title", lambda d: d.find_elements(By.CSS_SELECTOR, ".runhead h1"))
    assert browser.find_element(By.CSS_SELECTOR, ".runhead h1").text == HOSTILE
    params = browser.find_element(By.CSS_SELECTOR, "table.params").text
    assert HOSTILE in params
    assert browser.find_elements(By.CSS_SELECTOR, "img") == []
    visit(browser, server.url + f"#/run/{ids['plain']}")
    wait(browser, "notes", lambda d: d.find_elements(By.CSS_SELECTOR, "#notes .md"))
    notes = browser.find_element(By.CSS_SELECTOR, "#notes")
    assert "<script>alert(2)</script>" in notes.text
    assert notes.find_element(By.CSS_SELECTOR, "strong").text == "down"  # the Markdown subset
    assert browser.find_elements(By.CSS_SELECTOR, "#notes script") == []
    links = browser.find_elements(By.CSS_SELECTOR, "#notes a")
    assert [(a.text, a.get_attribute("href")) for a in links] == [("docs", "https://example.org/x")]
    assert "[bad](javascript:alert(3))" in notes.text  # not a link: only http(s) targets are
    shot(browser, "run-overview")
    no_script_ran(browser)
    assert console_errors(browser) == []


def test_a_chart_has_its_points_and_zooming_fetches_finer_data(
    browser: webdriver.Chrome, served
) -> None:
    server, ids = served
    visit(browser, server.url + f"#/run/{ids['plain']}?tab=charts")
    wait(
        browser,
        "two charts",
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".plot[data-points]")) == 2,
    )
    counts = browser.execute_script(
        "return [...document.querySelectorAll('.chart')].map("
        "c => [c.dataset.key, c.querySelector('.plot').data[0].x.length])"
    )
    assert sorted(counts) == [["acc", 10], ["loss", 100]]
    assert browser.find_elements(By.CSS_SELECTOR, ".plot .main-svg path.js-line")
    shot(browser, "run-charts")
    axis = Select(browser.find_element(By.CSS_SELECTOR, "select[title='x axis']"))
    axis.select_by_value("relative")  # seconds since the run started
    relative = "return [...document.querySelectorAll('.plot')].map(p => p.data ? Math.max(...p.data[0].x) : -1)"
    wait(
        browser,
        "relative-time charts",
        lambda d: all(0 <= x < 30 for x in d.execute_script(relative)),
    )  # steps go to 99
    axis.select_by_value("step")  # the choice is remembered: put it back for the next tests

    visit(browser, server.url + f"#/run/{ids['long']}?tab=charts")
    plot = wait(
        browser, "long chart", lambda d: d.find_elements(By.CSS_SELECTOR, ".plot[data-points]")
    )[0]
    assert plot.get_attribute("data-total") == "200000"
    assert int(plot.get_attribute("data-points")) <= 2002
    browser.execute_script(
        "Plotly.relayout(arguments[0], {'xaxis.range[0]': 1000, 'xaxis.range[1]': 1999})", plot
    )
    wait(browser, "zoomed data", lambda d: plot.get_attribute("data-points") == "1002")
    assert "in view" in browser.find_element(By.CSS_SELECTOR, ".chart-head .info").text
    shot(browser, "run-zoomed")
    assert console_errors(browser) == []


def test_the_compare_view_shows_both_runs(browser: webdriver.Chrome, served) -> None:
    server, ids = served
    visit(browser, server.url + f"#/compare/{ids['plain']},{ids['hostile']}")
    wait(
        browser,
        "curves",
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".plot[data-points]")) == 2,
    )
    chips = browser.find_element(By.CSS_SELECTOR, ".chips").text
    assert "swift-otter" in chips and HOSTILE in chips
    traces = browser.execute_script(
        "return [...document.querySelectorAll('.chart .plot')].map(p => p.data.length)"
    )
    assert traces == [2, 2]
    # each chart's runs came in one bulk answer, not one request per run
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert sum("/api/series_many?" in url for url in fetched) == 2
    assert not [url for url in fetched if "/api/series?" in url]
    diff = browser.find_element(By.CSS_SELECTOR, "table.diff").text
    assert "batch_size" in diff and "32" in diff and "64" in diff
    wait(
        browser,
        "parallel coordinates",
        lambda d: d.find_elements(By.CSS_SELECTOR, "#parcoords .main-svg"),
    )
    wait(browser, "scatter", lambda d: d.find_elements(By.CSS_SELECTOR, "#scatter .main-svg"))
    assert browser.execute_script("return document.getElementById('scatter').data.length") == 2
    # the hostile param value is an axis tick of the parallel coordinates: as text
    assert HOSTILE in browser.find_element(By.ID, "parcoords").get_attribute("textContent")
    assert browser.find_elements(By.CSS_SELECTOR, "img") == []
    shot(browser, "compare")
    no_script_ran(browser)
    assert console_errors(browser) == []


def test_selecting_rows_and_filtering(browser: webdriver.Chrome, served) -> None:
    server, ids = served
    browser.execute_script("localStorage.clear()")
    visit(browser, server.url)
    wait(browser, "rows", lambda d: len(rows(d)) == 3)
    box = browser.find_element(By.ID, "filter")
    box.send_keys("params.lr >= 0.1", Keys.ENTER)
    wait(browser, "filtered rows", lambda d: len(rows(d)) == 2)
    box.clear()
    box.send_keys("params.lr >>> 1", Keys.ENTER)
    wait(
        browser,
        "a filter error",
        lambda d: "column" in d.find_element(By.CSS_SELECTOR, ".filter-error").text,
    )
    box.clear()
    box.send_keys(Keys.ENTER)
    wait(browser, "all rows", lambda d: len(rows(d)) == 3)
    for rid in (ids["plain"], ids["hostile"]):
        browser.find_element(By.CSS_SELECTOR, f"tr[data-id='{rid}'] td.check input").click()
    button = browser.find_element(By.ID, "compare")
    assert button.text == "Compare (2)" and button.is_enabled()
    button.click()
    wait(browser, "compare page", lambda d: "#/compare/" in d.current_url)
    # the bad filter's 400 is logged by the browser; nothing else may be
    assert console_errors(browser, expected=("status of 400",)) == []


def test_code_artifacts_and_environment_tabs(browser: webdriver.Chrome, served) -> None:
    server, ids = served
    visit(browser, server.url + f"#/run/{ids['hostile']}?tab=code")
    wait(browser, "diff", lambda d: d.find_elements(By.CSS_SELECTOR, "pre.difftext"))
    assert "train.py" in browser.find_element(By.CSS_SELECTOR, "ul.files").text
    added = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "pre.difftext .add")]
    assert "+lr = 0.3  # tuned" in added
    files = len(browser.find_elements(By.CSS_SELECTOR, "ul.files li"))
    toolbar = browser.find_element(By.CSS_SELECTOR, ".toolbar .muted").text
    assert toolbar.startswith(f"{files} changed file{'' if files == 1 else 's'} vs "), toolbar
    shot(browser, "run-code")
    visit(browser, server.url + f"#/run/{ids['plain']}?tab=artifacts")
    wait(browser, "artifacts", lambda d: d.find_elements(By.CSS_SELECTOR, "table.artifacts a"))
    links = [
        a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "table.artifacts a")
    ]
    assert any(link.endswith("name=model.txt") for link in links)
    visit(browser, server.url + f"#/run/{ids['plain']}?tab=environment")
    wait(browser, "packages", lambda d: d.find_elements(By.CSS_SELECTOR, ".scroll table tr"))
    packages = browser.find_element(By.CSS_SELECTOR, ".scroll table").text
    assert "dulwich" in packages and "[object Object]" not in packages
    shot(browser, "run-environment")
    assert console_errors(browser) == []


def test_the_report_opens_offline_in_the_same_browser(
    browser: webdriver.Chrome, served, tmp_path: Path
) -> None:
    from gitxp.present.report import report

    server, _ids = served
    out = report(server.repo.path, out=tmp_path / "report.html")
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0},
    )
    try:
        visit(browser, Path(out).as_uri())
        wait(
            browser,
            "report table",
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "#runs-table tbody tr")) == 3,
        )
        wait(
            browser,
            "report charts",
            lambda d: len(d.find_elements(By.CSS_SELECTOR, ".chart .main-svg")) >= 2,
        )
        assert HOSTILE in browser.find_element(By.ID, "runs-table").text
        assert "null" not in browser.find_element(By.TAG_NAME, "main").text
        assert browser.find_elements(By.CSS_SELECTOR, "img") == []
        traces = browser.execute_script(
            "return [...document.querySelectorAll('.chart .plot')].map(p => p.data.length)"
        )
        assert traces == [2, 3]  # acc: two runs; loss: three
        shot(browser, "report")
        no_script_ran(browser)
        assert console_errors(browser) == []
    finally:
        browser.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )


def test_a_running_run_updates_live_as_checkpoints_land(
    browser: webdriver.Chrome, repo: Path
) -> None:
    import gitxp

    run = gitxp.start_run(experiment="live", name="live-run", repo=repo, snapshot=False)
    try:
        run.log_metric("loss", 1.0, step=0)
        run.checkpoint()
        with UIServer(str(repo), port=0).start() as server:
            visit(browser, server.url)
            wait(
                browser,
                "the running run with its first value",
                lambda d: (
                    len(rows(d)) == 1
                    and "RUNNING" in rows(d)[0].text
                    and rows(d)[0].find_element(By.CSS_SELECTOR, "td.metrics").text == "1"
                ),
            )
            assert browser.find_element(By.CSS_SELECTOR, ".live").text == "● live"
            run.log_metric("loss", 0.25, step=1)
            run.checkpoint()
            wait(
                browser,
                "the new value after the checkpoint",
                lambda d: (
                    rows(d)
                    and rows(d)[0].find_element(By.CSS_SELECTOR, "td.metrics").text == "0.25"
                ),
            )
            visit(browser, server.url + f"#/run/{run.id}?tab=charts")
            plot = wait(
                browser,
                "the chart",
                lambda d: d.find_elements(By.CSS_SELECTOR, ".plot[data-points]"),
            )[0]
            assert plot.get_attribute("data-points") == "2"
            run.log_metric("loss", 0.125, step=2)
            run.checkpoint()
            wait(
                browser,
                "the chart to grow",
                lambda d: (
                    [
                        p.get_attribute("data-points")
                        for p in d.find_elements(By.CSS_SELECTOR, ".plot")
                    ]
                    == ["3"]
                ),
            )
            visit(browser, server.url)
            wait(browser, "the row", lambda d: len(rows(d)) == 1)
            run.end()
            wait(browser, "FINISHED", lambda d: rows(d) and "FINISHED" in rows(d)[0].text)
    finally:
        if run.status == "RUNNING":
            run.end()
    assert console_errors(browser) == []


def test_the_page_shows_values_and_sizes_as_the_cli_does(browser: webdriver.Chrome, served) -> None:
    """The page's number and size formatting (common.js) agrees with `gitxp show`'s."""
    from gitxp._text import size
    from gitxp.format.values import from_json_float
    from gitxp.present.output import fmt_value

    server, _ = served
    visit(browser, server.url)
    wait(browser, "the page's scripts", lambda d: d.execute_script("return typeof GX") == "object")
    numbers: list[Any] = [0.1, 0.123456789, 1234567.5, 1e-5, 1e-4, 0.00012345678, 123456.7]
    numbers += [999999.5, 1e15, 1.5e300, -0.5, -1e-7, 2.5e-10, 3, 1234567, "NaN", "-Infinity"]
    shown = browser.execute_script("return arguments[0].map((v) => GX.num(v))", numbers)
    assert shown == [fmt_value(from_json_float(v) if isinstance(v, str) else v) for v in numbers]
    sizes = [0, 512, 1023, 1024, 4200, 5 * 2**20, 3 * 2**30, 5000 * 2**30]
    assert browser.execute_script("return arguments[0].map(GX.bytes)", sizes) == [
        size(n) for n in sizes
    ]
