"""The web console in a real headless Chromium (Debian's `chromium` and `chromium-driver`, driven
by selenium) against a real `dockgate serve` with the sample fleet: each page asked a question, its
answer checked, its screenshot written to `build/console-*.png`."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import dockgate
from tests.server.service.conftest import RunningServer, start_server

selenium = pytest.importorskip("selenium", reason="selenium is not installed (the `dev` extra)")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
BUILD = Path(__file__).parents[2] / "build"
A = "111122223333"
PUSHER = f"arn:aws:iam::{A}:user/ci/pusher"
READER = f"arn:aws:iam::{A}:user/reader"
APP = f"arn:aws:ecr:us-east-1:{A}:repository/team-a/app"
WAIT = 20.0
"""seconds an answer may take to appear (a bound on a hang, not a timing assertion)"""

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)",
)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str]]:
    running = start_server(tmp_path_factory.mktemp("console"), "--console-listen", "127.0.0.1:0")
    try:
        port = json.loads((running.data_dir / "ready.json").read_text())["console_port"]
        yield running, f"http://127.0.0.1:{port}"
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager download a driver
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--window-size=1280,900", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses its sandbox to root
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_ask_shows_the_decision_and_the_deciding_statement(
    console: tuple[RunningServer, str], browser: webdriver.Chrome
) -> None:
    _, url = console
    browser.get(f"{url}/#/ask")
    principal = browser.find_element(By.ID, "ask-principal")
    principal.send_keys("pusher")
    # search as you type: the matching principal is offered
    offered = "return [...document.querySelectorAll('#principal-options option')].map(o => o.value)"
    _wait(browser).until(lambda _: browser.execute_script(offered) == [PUSHER])
    principal.clear()
    principal.send_keys(PUSHER)
    Select(browser.find_element(By.ID, "ask-action")).select_by_value("ecr:PutImage")
    browser.find_element(By.ID, "ask-repository").send_keys(APP)
    browser.find_element(By.CSS_SELECTOR, "#ask-form button[type=submit]").click()
    verdict = _wait(browser).until(
        expected_conditions.visibility_of_element_located((By.ID, "ask-verdict"))
    )
    assert "Allowed" in verdict.text
    marked = browser.find_elements(By.CSS_SELECTOR, "#ask-result mark.deciding")
    assert marked, "no statement is highlighted"
    assert '"Sid": "PushTeamA"' in marked[0].text
    assert "identity policy" in browser.find_element(By.ID, "ask-result").text
    _screenshot(browser, "ask")

    # the link carries the question: opened afresh, it asks it again
    shared = browser.current_url
    assert "principal=" in shared and "PutImage" in shared
    browser.get("about:blank")
    browser.get(shared)
    verdict = _wait(browser).until(
        expected_conditions.visibility_of_element_located((By.ID, "ask-verdict"))
    )
    assert "Allowed" in verdict.text


def test_an_explicit_deny_names_the_scp_statement(
    console: tuple[RunningServer, str], browser: webdriver.Chrome
) -> None:
    _, url = console
    query = f"principal=arn:aws:iam::{A}:root&action=ecr:DeleteRepository&resource={APP}"
    browser.get(f"{url}/#/ask?{query}")
    verdict = _wait(browser).until(
        expected_conditions.visibility_of_element_located((By.ID, "ask-verdict"))
    )
    assert "Denied (explicitly)" in verdict.text
    marked = browser.find_element(By.CSS_SELECTOR, "#ask-result mark.deciding")
    assert '"Sid": "NoDeletes"' in marked.text
    assert "service control policy" in browser.find_element(By.ID, "ask-result").text


def test_who_can_shows_the_matrix_with_reasons(
    console: tuple[RunningServer, str], browser: webdriver.Chrome
) -> None:
    _, url = console
    browser.get(f"{url}/#/who-can?repository={APP}")
    _wait(browser).until(expected_conditions.presence_of_element_located((By.ID, "who-matrix")))
    assert _cell(browser, PUSHER, "push").text.startswith("✓ Allowed")
    assert _cell(browser, READER, "pull").text.startswith("✓ Allowed")
    assert _cell(browser, READER, "push").text.endswith("Denied (implicitly)")
    # the repository policy's grant to the partner account is shown as written
    partner = browser.find_element(By.XPATH, "//tr[th='arn:aws:iam::444455556666:root']")
    assert "Account" in partner.text
    cell = _cell(browser, PUSHER, "push")
    browser.execute_script("arguments[0].focus()", cell)
    tip = cell.find_element(By.CSS_SELECTOR, ".tip")
    assert tip.is_displayed()
    assert "statement 2 of" in tip.text and "push-team-a" in tip.text
    _screenshot(browser, "who-can")


def test_what_can_lists_a_principal_s_access(
    console: tuple[RunningServer, str], browser: webdriver.Chrome
) -> None:
    _, url = console
    browser.get(f"{url}/#/what-can")
    browser.find_element(By.ID, "what-principal").send_keys(READER)
    browser.find_element(By.CSS_SELECTOR, "#what-form button[type=submit]").click()
    table = _wait(browser).until(
        expected_conditions.presence_of_element_located((By.XPATH, f"//table[caption='{APP}']"))
    )
    row = table.find_element(By.XPATH, ".//tr[th='ecr:BatchGetImage']")
    assert "Allowed" in row.text and "registry-read" in row.text
    assert "ecr:PutImage" not in table.text
    _screenshot(browser, "what-can")


def test_preview_shows_what_would_change_and_writes_nothing(
    console: tuple[RunningServer, str], browser: webdriver.Chrome
) -> None:
    _, url = console
    before = _state(url)["revision"]
    browser.get(f"{url}/#/preview")
    Select(browser.find_element(By.ID, "preview-kind")).select_by_value("identity")
    browser.find_element(By.ID, "preview-target").send_keys(READER)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "PushTeamA", "Effect": "Allow", "Action": "ecr:PutImage", "Resource": APP}
        ],
    }
    text = browser.find_element(By.ID, "preview-text")
    text.send_keys(json.dumps(policy, indent=2))
    browser.find_element(By.CSS_SELECTOR, "#preview-form button[type=submit]").click()
    summary = _wait(browser).until(
        expected_conditions.visibility_of_element_located((By.ID, "preview-summary"))
    )
    assert summary.text.startswith("1 change of access, 1 of them new access")
    assert "Nothing was written" in summary.text
    row = browser.find_element(By.CSS_SELECTOR, "#preview-changes tbody tr")
    assert READER in row.text and "ecr:PutImage" in row.text and "(new access)" in row.text
    _screenshot(browser, "preview")
    assert _state(url)["revision"] == before


def test_state_shows_revision_freshness_and_decisions(
    console: tuple[RunningServer, str], browser: webdriver.Chrome
) -> None:
    running, url = console
    with dockgate.Client(running.decision) as client:
        for _ in range(5):
            client.authorize(PUSHER, "ecr:PutImage", APP)
    browser.get(f"{url}/#/state")
    figures = _wait(browser).until(
        expected_conditions.visibility_of_element_located((By.ID, "state-figures"))
    )
    text = figures.text
    assert "Revision\n1" in text
    assert "Store reachable\nyes" in text
    # the server's own metrics count the gRPC decisions
    _wait(browser).until(lambda _: "Allowed: 5" in figures.text)
    _wait(browser).until(lambda _: "a second over the last" in figures.text)
    _screenshot(browser, "state")


def test_ask_and_the_matrix_work_from_the_keyboard_alone(
    console: tuple[RunningServer, str], browser: webdriver.Chrome
) -> None:
    _, url = console
    browser.get("about:blank")
    browser.get(f"{url}/#/ask")
    _wait(browser).until(lambda _: browser.find_elements(By.CSS_SELECTOR, "#ask-action option"))
    principal = _tab_to(browser, "ask-principal")
    principal.send_keys(READER)
    _tab_to(browser, "ask-action")  # keeps the catalogue's default, ecr:BatchGetImage
    repository = _tab_to(browser, "ask-repository")
    repository.send_keys(APP, Keys.ENTER)
    verdict = _wait(browser).until(
        expected_conditions.visibility_of_element_located((By.ID, "ask-verdict"))
    )
    assert "Allowed" in verdict.text
    assert '"Sid": "Read"' in browser.find_element(By.CSS_SELECTOR, "mark.deciding").text

    # to the matrix through the navigation, then a cell's reason by focus alone
    _tab_to(browser, "who-can", "data-page").send_keys(Keys.ENTER)
    field = _tab_to(browser, "who-repository")
    field.send_keys(APP, Keys.ENTER)
    _wait(browser).until(expected_conditions.presence_of_element_located((By.ID, "who-matrix")))
    cell = _tab_to(browser, "pull", "data-group")
    assert cell.get_attribute("data-principal")
    tip = cell.find_element(By.CSS_SELECTOR, ".tip")
    assert tip.is_displayed() and "pull for" in tip.text


def _tab_to(browser: webdriver.Chrome, value: str, attribute: str = "id") -> WebElement:
    """Press Tab until the element whose `attribute` is `value` has the focus (at most 60
    times): what a keyboard user does."""
    for _ in range(60):
        active = browser.switch_to.active_element
        if active.get_attribute(attribute) == value:
            return active
        ActionChains(browser).send_keys(Keys.TAB).perform()  # to whatever has the focus
    raise AssertionError(f"tab never reached {attribute}={value}")


def _cell(browser: webdriver.Chrome, principal: str, group: str) -> WebElement:
    return browser.find_element(
        By.CSS_SELECTOR, f'#who-matrix button[data-principal="{principal}"][data-group="{group}"]'
    )


def _state(url: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{url}/api/state", timeout=10) as answer:
        state: dict[str, object] = json.loads(answer.read())
    return state


def _wait(browser: webdriver.Chrome) -> WebDriverWait[webdriver.Chrome]:
    return WebDriverWait(browser, WAIT)


def _screenshot(browser: webdriver.Chrome, page: str) -> None:
    """The whole page (the window grown to its height) to build/console-PAGE.png."""
    BUILD.mkdir(exist_ok=True)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, max(900, min(int(height) + 120, 4000)))
    path = BUILD / f"console-{page}.png"
    browser.save_screenshot(str(path))
    browser.set_window_size(1280, 900)
    assert path.stat().st_size > 0
