"""The API's docs pages (Swagger UI at /api/docs/, ReDoc at /api/redoc/) load nothing from outside the server.

drf-spectacular's ReDoc page links Google Fonts, and Swagger UI's validator badge sends the schema's address to
validator.swagger.io: a visitor's browser would tell outsiders about the deployment, and on a closed network the pages
would hang on them. The rendered pages are checked for any absolute URL, and a real browser (Debian's chromium, as in
tests/runs/test_admin_browser.py; skipped when it is missing) loads both pages and records every request it makes.
ReDoc's script also shows Redocly's logo from cdn.redoc.ly, whatever its settings: the pages' Content-Security-Policy
(apps/core/api_docs.py) makes the browser refuse it.
"""

import json
import re
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.runs.test_admin_browser import CHROMEDRIVER, CHROMIUM, CHROMIUM_ARGUMENTS

DOCS_PAGES = {
    # The page, and an element that exists once its script has rendered the schema.
    "/api/docs/": ".swagger-ui .info .title",
    "/api/redoc/": ".api-content h1",
}
ABSOLUTE_URL = re.compile(r"(?:https?:)?//[A-Za-z0-9.-]+")


@pytest.mark.parametrize("path", DOCS_PAGES)
def test_the_rendered_docs_pages_name_no_outside_address(client, path):
    response = client.get(path)

    assert response.status_code == 200
    page = response.content.decode()
    assert ABSOLUTE_URL.findall(page) == []
    assert "/static/drf_spectacular_sidecar/" in page
    # What the bundled scripts would fetch on their own, the browser refuses: this server only.
    assert response["Content-Security-Policy"].startswith("default-src 'self'; ")


def test_swagger_ui_has_no_validator_badge(client):
    page = client.get("/api/docs/").content.decode()

    assert re.search(r'"validatorUrl":\s*null', page)


@pytest.fixture
def logging_browser(tmp_path: Path):
    if not (CHROMEDRIVER.exists() and CHROMIUM.exists()):
        pytest.skip(f"{CHROMEDRIVER} or {CHROMIUM} is missing: `apt-get install -y chromium chromium-driver`")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in CHROMIUM_ARGUMENTS:
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def requested_urls(driver: webdriver.Chrome) -> list[str]:
    """Every URL the browser sent a request to since the last call (Chrome's network events). A request the page's
    Content-Security-Policy blocked is left out: it never left the browser."""
    urls, blocked = {}, set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls[message["params"]["requestId"]] = message["params"]["request"]["url"]
        elif message["method"] == "Network.loadingFailed" and message["params"].get("blockedReason") == "csp":
            blocked.add(message["params"]["requestId"])
    return [url for request_id, url in urls.items() if request_id not in blocked]


@pytest.mark.live_server
@pytest.mark.parametrize("path", DOCS_PAGES)
def test_a_browser_showing_the_docs_asks_only_this_server(logging_browser, live_server, path):
    logging_browser.get(f"{live_server.url}{path}")
    WebDriverWait(logging_browser, 20).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, DOCS_PAGES[path]))
    )

    urls = requested_urls(logging_browser)
    assert any(url.startswith(f"{live_server.url}/api/schema/") for url in urls), urls  # the schema was fetched
    # The browser's own pages (chrome://) are not the page's doing; every address on the network must be ours.
    on_the_network = [url for url in urls if url.startswith(("http:", "https:", "ws:", "wss:"))]
    outside = [url for url in on_the_network if not url.startswith(f"{live_server.url}/")]
    assert outside == []
