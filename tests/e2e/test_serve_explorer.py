"""The audience explorer page in a real headless browser against the Serve app on local Ray.

Debian's chromium driven by Selenium (scripts/install_browser.sh installs both) loads the page
served under a route prefix (so its relative URLs are exercised); the page asks for an API key,
refuses a wrong one, keeps the right one in the tab's sessionStorage only and sends it with every
request. It runs an expansion for a prepared seed list, checks the table and the map against
counts read from the run directory, opens a user's history and recommendations, triggers a bad
request and reads the error on the page, and reloads without asking again. A screenshot of each
state is saved under test-artifacts/explorer/ (printed).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import requests

from reco import artifacts
from reco.run_dir import RunDir

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "explorer"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1800",
]
AUDIENCE = 30
WAIT_S = 60


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail(f"{CHROMIUM} or {CHROMEDRIVER} is missing: run scripts/install_browser.sh")
    profile = tempfile.mkdtemp(prefix="explorer-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _wait(driver, condition, what: str):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(lambda d: condition(d))
    except TimeoutException:
        shot = ARTIFACTS / f"timeout-{what.replace(' ', '-')}.png"
        driver.save_screenshot(str(shot))
        raise AssertionError(f"the page never showed {what} within {WAIT_S}s (screenshot {shot})") from None


def _shot(driver, name: str) -> Path:
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    return path


def _idle(driver) -> bool:
    return not driver.find_elements("css selector", "[aria-busy=true]")


def _first_list(run_dir: str) -> tuple[str, set[str]]:
    """The run's first expanded seed list (by id) and its members, read from the run directory."""
    t = RunDir(run_dir).read_table(artifacts.SEED_LISTS).to_pandas()
    list_id = sorted(t.seed_list_id.unique())[0]
    return list_id, set(t[t.seed_list_id == list_id].user_id)


def _seed_pixels(driver) -> int:
    """Pixels of the seed colour on the map canvas: the seeds were really drawn."""
    return driver.execute_script("""
        const c = document.getElementById('map');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] < 80 && d[i + 1] > 90 && d[i + 1] < 140 && d[i + 2] > 200) n++;
        return n;""")


KEY_ITEM = "reco-api-key"


def _stored(driver) -> dict:
    return driver.execute_script(
        "return {session: sessionStorage.getItem(arguments[0]), local: JSON.stringify(localStorage), "
        "cookie: document.cookie}",
        KEY_ITEM,
    )


def _enter_key(driver, key: str) -> None:
    box = driver.find_element("id", "api-key")
    box.clear()
    box.send_keys(key)
    driver.find_element("id", "key-btn").click()


def test_explorer_page_end_to_end(served, browser):
    from selenium.webdriver.support.ui import Select

    base = served.base
    # The run the app serves now: test_serve_http.py's redeploy moves the shared app to a copy of
    # the tiny run, so read it from the app rather than assume this module runs first.
    run_dir = requests.get(f"{base}/readyz", timeout=30).json()["run_dir"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nexplorer screenshots: {ARTIFACTS}")
    d = browser
    by_id = d.find_element
    key = served.keys["explorer-page"]  # explorer, expand and recommend: what the page needs

    # 0. the page asks for a key before it asks the API anything, and refuses a wrong one
    d.get(base)  # no trailing slash: the <base> the server writes must still resolve every URL
    _wait(d, lambda d: by_id("id", "key-form").is_displayed(), "the key prompt")
    assert _stored(d)["session"] is None and run_dir not in by_id("id", "run-info").text
    _enter_key(d, "rk_not-a-key")
    _wait(d, lambda d: by_id("id", "key-error").is_displayed(), "the refused key's message")
    assert "The key was refused" in by_id("id", "key-error").text and by_id("id", "key-form").is_displayed()
    assert _stored(d)["session"] is None
    _shot(d, "00-key.png")

    # 1. with the key, the page loads: the run, its prepared lists and its offline evaluation
    _enter_key(d, key)
    _wait(d, lambda d: run_dir in by_id("id", "run-info").text, "the run directory")
    stored = _stored(d)
    assert stored["session"] == key and key not in stored["local"] and key not in stored["cookie"]
    assert not by_id("id", "key-form").is_displayed()
    _wait(d, lambda d: len(Select(by_id("id", "seed-list")).options) > 1, "the prepared seed lists")
    _wait(d, lambda d: d.find_elements("css selector", "#eval-expansion table tbody tr"), "the expansion evaluation")
    _wait(
        d,
        lambda d: d.execute_script(
            "return [...document.querySelectorAll('.plots img')].every(i => i.complete && i.naturalWidth > 0)"
        ),
        "the report plots",
    )
    assert d.find_elements("css selector", ".plots img"), "no report plot on the page"
    _shot(d, "01-loaded.png")

    # 2. expand a prepared list: the table and the map show the right counts
    list_id, members = _first_list(run_dir)
    Select(by_id("id", "seed-list")).select_by_value(list_id)
    _wait(
        d, lambda d: len(by_id("id", "seed-ids").get_attribute("value").split()) == len(members), "the list's seed ids"
    )
    assert set(by_id("id", "seed-ids").get_attribute("value").split()) == members
    Select(by_id("id", "method")).select_by_value("blend")
    size = by_id("id", "audience-size")
    size.clear()
    size.send_keys(str(AUDIENCE))
    by_id("id", "expand-btn").click()
    _wait(
        d,
        lambda d: by_id("id", "legend-audience").text == str(AUDIENCE) and _idle(d),
        "the expanded audience on the map",
    )
    rows = d.find_elements("css selector", "#audience-table tbody tr")
    assert len(rows) == AUDIENCE
    audience = [r.get_attribute("data-user") for r in rows]
    assert not set(audience) & members, "a seed came back in the audience"
    assert [r.find_elements("css selector", "td")[0].text for r in rows] == [str(i) for i in range(1, AUDIENCE + 1)]
    _wait(
        d, lambda d: all(r.find_elements("css selector", "td")[4].text not in ("…", "") for r in rows), "the top topics"
    )
    assert "community" in rows[0].find_elements("css selector", "td")[4].text  # synthetic topic names
    canvas = by_id("id", "map")
    n_embedded = RunDir(run_dir).read_table(artifacts.USER_EMBEDDINGS, columns=["user_id"]).num_rows
    assert canvas.get_attribute("data-seeds") == by_id("id", "legend-seeds").text == str(len(members))
    assert canvas.get_attribute("data-audience") == str(AUDIENCE)
    assert (
        canvas.get_attribute("data-background") == by_id("id", "legend-background").text == str(min(2000, n_embedded))
    )
    assert _seed_pixels(d) > 20
    assert by_id("id", "expand-error").get_attribute("hidden") is not None
    _shot(d, "02-expanded.png")

    # 3. one user: history beside recommendations with calibrated probabilities
    user = audience[0]
    rows[0].find_element("css selector", "button").click()
    _wait(
        d,
        lambda d: (
            by_id("id", "user-id").get_attribute("value") == user
            and _idle(d)
            and d.find_elements("css selector", "#recs-table tbody tr")
        ),
        "the user's recommendations",
    )
    history = d.find_elements("css selector", "#history-table tbody tr")
    recs = d.find_elements("css selector", "#recs-table tbody tr")
    assert history and len(recs) == 10
    probs = [float(r.find_elements("css selector", "td")[2].text) for r in recs]
    assert probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)
    trained_on = {r.find_elements("css selector", "td")[0].text for r in history if "(held out)" not in r.text}
    assert not trained_on & {r.find_elements("css selector", "td")[1].text for r in recs}, (
        "recommended an item the user already has"
    )
    _shot(d, "03-user.png")

    # 4. a bad request: the API's reason, in words, on the page; nothing else breaks
    box = by_id("id", "seed-ids")
    box.clear()
    box.send_keys("nobody-1 nobody-2")
    by_id("id", "expand-btn").click()
    error = by_id("id", "expand-error")
    _wait(d, lambda d: error.is_displayed() and _idle(d), "the error message")
    assert "The request is not valid" in error.text and "at least 10 are needed" in error.text, error.text
    assert "(request " in error.text  # the id to quote when asking about it
    assert by_id("id", "expand-btn").is_enabled()
    by_id("id", "user-id").clear()
    by_id("id", "user-id").send_keys("no-such-user")
    by_id("id", "user-btn").click()
    _wait(d, lambda d: by_id("id", "user-error").is_displayed() and _idle(d), "the unknown-user message")
    assert "unknown user 'no-such-user'" in by_id("id", "user-error").text
    assert not by_id("id", "user-details").is_displayed(), "the previous user's tables stayed under the error"
    _shot(d, "04-errors.png")
    assert not [
        e
        for e in d.get_log("browser")
        if e["level"] == "SEVERE" and not any(f" {s} " in e["message"] for s in ("400", "401", "404", "422"))
    ]

    # 5. a reload keeps the tab's key: no prompt, the run loads again
    d.refresh()
    _wait(d, lambda d: run_dir in by_id("id", "run-info").text, "the run after a reload")
    assert not by_id("id", "key-form").is_displayed() and _stored(d)["session"] == key
