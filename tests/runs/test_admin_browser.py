"""The approval flow in a real browser: an approver logs in to the admin, opens a waiting run, approves it, and watches
it complete on a real Celery worker.

Debian's chromium, driven through Debian's chromedriver by Selenium with an explicit driver path, so Selenium Manager
never downloads anything; nothing on the page loads from the network. Skipped when chromedriver is missing (CI
installs it: see .ci/run).
"""

import time
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from apps.accounts.models import Membership, Organization, User
from apps.integrations.models import Notification
from apps.runs.models import FlowRun
from apps.runs.services.run_creation import flow_execute
from tests.factories import add_member
from tests.runs.flows import make_flow, make_request, step
from tests.workers import wait_for

pytestmark = [
    pytest.mark.live_server,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("celery_worker"),
]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
PASSWORD = "approver-password"


@pytest.fixture
def browser(tmp_path: Path):
    if not (CHROMEDRIVER.exists() and CHROMIUM.exists()):
        pytest.skip(
            f"{CHROMEDRIVER} or {CHROMIUM} is missing: install Debian's browser with "
            "`apt-get install -y chromium chromium-driver` (.ci/run does)"
        )
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in CHROMIUM_ARGUMENTS:
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def approver(transactional_db: None, organization: Organization) -> User:
    """Staff with the approve permission, a member of the owner's organization (the admin shows its runs only)."""
    user = User.objects.create_user("approver@example.com", PASSWORD, is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="approve_flowrun"))
    add_member(user, organization, Membership.Role.APPROVER)
    return user


def wait_until(driver: WebDriver, condition, timeout: float = 15):
    return WebDriverWait(driver, timeout).until(condition)


def status_shown(driver: WebDriver) -> str:
    """The run's status as the page shows it, read from the read-only field."""
    return driver.find_element(By.CSS_SELECTOR, ".field-status .readonly").text


def test_approver_logs_in_approves_a_waiting_run_and_sees_it_complete(live_server, browser, approver, owner):
    flow = make_flow(
        owner,
        [step(0, "Format Text", template="Refund approved"), step(1, "Send Notification", "Tell ann@example.com")],
        [(0, 1)],
    )
    flow_run = flow_execute(user=owner, flow=flow, flow_request=make_request(owner))
    wait_for(
        lambda: FlowRun.objects.filter(id=flow_run.id, status=FlowRun.Status.AWAITING_APPROVAL).exists(),
        timeout=60,
        message="the run to park before its Send Notification step",
    )

    browser.get(f"{live_server.url}/admin/login/?next=/admin/runs/flowrun/")
    browser.find_element(By.NAME, "username").send_keys(approver.email)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    # The changelist opens on the runs awaiting approval; this run is one of them.
    wait_until(browser, expected_conditions.element_to_be_clickable((By.LINK_TEXT, str(flow_run.id)))).click()

    wait_until(browser, expected_conditions.presence_of_element_located((By.ID, "approve-run")))
    assert status_shown(browser) == "Awaiting approval"
    nodes = browser.find_elements(By.CSS_SELECTOR, "svg.dag g.dag-node")
    assert [node.get_attribute("data-status") for node in nodes] == ["completed", "awaiting_approval"]
    browser.find_element(By.ID, "id_comment").send_keys("Checked the refund.")
    browser.find_element(By.ID, "approve-run").click()

    wait_until(browser, expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".messagelist .success")))
    assert "was approved" in browser.find_element(By.CSS_SELECTOR, ".messagelist .success").text
    assert not browser.find_elements(By.ID, "approve-run")
    deadline = time.monotonic() + 60
    while status_shown(browser) != "Completed":
        assert time.monotonic() < deadline, f"the run did not complete; the page shows {status_shown(browser)!r}"
        time.sleep(0.5)
        browser.refresh()

    nodes = browser.find_elements(By.CSS_SELECTOR, "svg.dag g.dag-node")
    assert [node.get_attribute("data-status") for node in nodes] == ["completed", "completed"]
    audit = browser.find_element(By.ID, "run-approval-audit").text
    assert approver.email in audit and "Checked the refund." in audit
    notification = Notification.objects.get(flow_run_id=flow_run.id)
    assert (notification.recipient, notification.message) == ("ann@example.com", "Refund approved")
