"""The web admin in a real Chromium (Debian's, driven by Selenium through the system chromedriver):
sign in, add a domain and a user, see the user log in over IMAP, reset the password, remove the
user. A screenshot of each main page is saved under test-artifacts/web/ (its path is printed).

One browser session for the whole flow keeps it fast. Nothing is downloaded: the driver and the
browser are named by path, so Selenium Manager has nothing to look for.
"""

from __future__ import annotations

import imaplib
import os
import smtplib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from courriel import admin_access
from courriel.testing.server import MailServer, start_server

ADMIN, ADMIN_PASSWORD = "root@example.org", "admin secret 1"
NEW_DOMAIN = "new.example"
NEW_USER = f"carol@{NEW_DOMAIN}"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
# Nothing answers DNS questions on this port: the domain page's live check says so at once.
NO_DNS = '[dns]\nnameservers = ["127.0.0.1:9"]\ntimeout_seconds = 1\n'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServer]:
    s = start_server(tmp_path_factory.mktemp("webadmin"), extra_config=NO_DNS)
    try:
        s.add_user(ADMIN, ADMIN_PASSWORD)
        s.call(admin_access.set_admin(s.store, ADMIN, True))
        yield s
    finally:
        s.stop()


@pytest.fixture
def chromium(need_program: Callable[[str], str]):  # type: ignore[no-untyped-def]
    browser = need_program("chromium")
    driver_path = need_program("chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",  # the tests may run as root
        "--disable-dev-shm-usage",
        "--ignore-certificate-errors",  # the server's self-signed certificate
        "--window-size=1280,1000",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


def _imap_login(server: MailServer, address: str, password: str) -> bool:
    with imaplib.IMAP4_SSL(
        "127.0.0.1", server.port("imaps"), ssl_context=server.ssl_context()
    ) as c:
        try:
            c.login(address, password)
        except imaplib.IMAP4.error:
            return False
        c.logout()
        return True


def test_admin_adds_a_domain_and_a_user_who_logs_in_over_imap(
    server: MailServer, chromium, capsys: pytest.CaptureFixture[str]
) -> None:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    d = chromium
    base = f"https://127.0.0.1:{server.port('https')}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def shot(name: str) -> None:
        d.save_screenshot(os.fspath(ARTIFACTS / f"{name}.png"))

    def fill(element_id: str, text: str) -> None:
        field = d.find_element(By.ID, element_id)
        field.clear()
        field.send_keys(text)

    def replaced(old: Any) -> Callable[[Any], bool]:
        """The old page is gone. Chromium reports a node of a document it is replacing at that
        very moment with a plain WebDriverException ("does not belong to the document"), not
        the stale-element error ``staleness_of`` waits for: that means gone too."""
        stale = expected_conditions.staleness_of(old)

        def gone(driver: Any) -> bool:
            try:
                return bool(stale(driver))
            except WebDriverException as e:
                if "does not belong to the document" in str(e):
                    return True
                raise

        return gone

    def click(element_id: str) -> None:
        """Clicks a button and waits for the page it leads to (not just for the click)."""
        old = d.find_element(By.TAG_NAME, "html")
        d.find_element(By.ID, element_id).click()
        WebDriverWait(d, 10).until(replaced(old))

    def flash() -> str:
        return str(d.find_element(By.ID, "flash").text)

    d.get(f"{base}/admin/users")  # not signed in: sent to the sign-in page
    assert d.current_url == f"{base}/login"
    shot("login")
    fill("username", ADMIN)
    fill("password", ADMIN_PASSWORD)
    click("sign-in")
    assert d.current_url == f"{base}/admin/domains"

    fill("new-domain", NEW_DOMAIN)
    click("add-domain")
    assert flash().startswith(f"Added domain {NEW_DOMAIN}")
    shot("domains")
    d.get(f"{base}/admin/domains/{NEW_DOMAIN}")
    assert "MX" in d.page_source and f"_dmarc.{NEW_DOMAIN}" in d.page_source
    shot("domain-dns")

    d.get(f"{base}/admin/users")
    fill("new-address", NEW_USER)
    fill("new-password", "first password")
    click("add-user")
    assert flash() == f"Added user {NEW_USER}."
    shot("users")
    assert _imap_login(server, NEW_USER, "first password")

    d.get(f"{base}/admin/users/{NEW_USER}")
    fill("app-password-name", "phone")
    click("add-app-password")
    app_password = d.find_element(By.CSS_SELECTOR, "#new-app-password code").text
    assert len(app_password) == 23  # four groups of five, shown once
    assert _imap_login(server, NEW_USER, app_password)
    with smtplib.SMTP_SSL(
        "127.0.0.1", server.port("submissions"), context=server.ssl_context(), timeout=10
    ) as smtp:
        smtp.login(NEW_USER, app_password)  # the same app password works for sending

    fill("reset-password", "second password")
    click("reset")
    assert flash() == f"New password set for {NEW_USER}."
    shot("user")
    assert not _imap_login(server, NEW_USER, "first password")
    assert _imap_login(server, NEW_USER, "second password")

    click("remove-user")
    assert flash() == f"Removed user {NEW_USER} and all their mail."
    assert NEW_USER not in d.find_element(By.TAG_NAME, "table").text
    assert not _imap_login(server, NEW_USER, "second password")

    for page in ("aliases", "queue", "events", "status", "tokens", "audit"):
        d.get(f"{base}/admin/{page}")
        assert d.find_element(By.TAG_NAME, "h1").text
        shot(page)
    audit = d.find_element(By.TAG_NAME, "table").text
    d.get(f"{base}/me")
    settings = d.find_element(By.TAG_NAME, "table").text  # the table `courriel serve` prints
    assert str(server.port("imaps")) in settings and str(server.port("submissions")) in settings
    assert (
        d.find_element(By.ID, "apple-profile")
        .get_attribute("href")
        .endswith("/profile/apple.mobileconfig")
    )
    shot("me")
    click("sign-out")
    assert d.current_url == f"{base}/login"
    with capsys.disabled():
        print(f"\nweb admin screenshots: {ARTIFACTS}")
    for action in ("domain add", "user add", "user passwd", "user remove"):
        assert action in audit
