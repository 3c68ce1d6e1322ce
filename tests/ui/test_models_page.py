"""The models page and a run's registered versions, in a real headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

import gitxp
from gitxp.ui import UIServer
from tests.ui.test_browser import browser, console_errors, no_script_ran, shot, visit, wait
from tests.ui_helpers import HOSTILE, get_json, served_repo

__all__ = ["browser"]  # the module-scoped Chromium of test_browser.py


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UIServer, dict[str, str]]]:
    """The UI test runs, with model churn: v0.0.1 (plain run, prod), v0.0.2 (the run with a
    hostile name, staging, registered with a hostile message), and a deregistered v0.0.3."""
    with served_repo(tmp_path_factory, "uimodels") as (server, ids):
        with gitxp.open(Path(server.repo.path)) as repo:
            repo.register_model(ids["plain"], "churn", path="model.txt")
            repo.assign_stage("churn", "prod")
            repo.register_model(ids["hostile"], "churn", message=HOSTILE)
            repo.assign_stage("churn@v0.0.2", "staging")
            repo.register_model(ids["long"], "churn")
            repo.deregister_version("churn@v0.0.3")
            repo.register_model(ids["long"], "team/fraud")
        yield server, ids


def test_the_models_page_lists_versions_stages_and_runs(
    browser: webdriver.Chrome, registry: tuple[UIServer, dict[str, str]]
) -> None:
    server, ids = registry
    data = get_json(server.port, "/api/models")
    assert [m["name"] for m in data["models"]] == ["churn", "team/fraud"]
    assert data["models"][0]["stages"] == {"prod": "v0.0.1", "staging": "v0.0.2"}

    visit(browser, f"{server.url}#/")
    browser.find_element(By.ID, "models-link").click()
    cards = wait(
        browser,
        "the model cards",
        lambda d: d.find_elements(By.CSS_SELECTOR, "#models .model-card") or None,
    )
    assert [c.get_attribute("data-model") for c in cards] == ["churn", "team/fraud"]
    churn = cards[0]
    versions = churn.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert [v.get_attribute("data-version") for v in versions] == ["v0.0.3", "v0.0.2", "v0.0.1"]
    assert "inactive" in versions[0].get_attribute("class")  # deregistered
    assert [s.text for s in versions[2].find_elements(By.CSS_SELECTOR, ".stage")] == ["prod"]
    assert [s.text for s in versions[1].find_elements(By.CSS_SELECTOR, ".stage")] == ["staging"]
    # the hostile run name and tag message are text, never markup
    hostile = versions[1].find_element(By.CSS_SELECTOR, "a.run")
    assert hostile.text == HOSTILE
    assert versions[1].find_elements(By.TAG_NAME, "img") == []
    assert HOSTILE in versions[1].find_elements(By.TAG_NAME, "td")[-1].get_attribute("title")
    shot(browser, "models")

    # a version links to its run, whose overview lists what it was registered as
    versions[2].find_element(By.CSS_SELECTOR, "a.run").click()
    card = wait(browser, "the registered card", lambda d: d.find_elements(By.ID, "registered"))
    assert "churn@v0.0.1" in card[0].text and "prod" in card[0].text
    assert browser.current_url.endswith(f"#/run/{ids['plain']}")
    card[0].find_element(By.LINK_TEXT, "churn@v0.0.1").click()
    only = wait(
        browser,
        "one model",
        lambda d: (cs := d.find_elements(By.CSS_SELECTOR, "#models .model-card")) and len(cs) == 1,
    )
    assert only
    no_script_ran(browser)
    assert console_errors(browser) == []
