"""What a test reads off the fans' pages, by the ids and data attributes they carry."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from selenium.common.exceptions import NoSuchElementException, WebDriverException
from selenium.webdriver.common.by import By

FAN_ID_KEY = "boxoffice.fan_id"
POLL_SECONDS = 0.1


class FanPages:
    """One browser tab's view of the countdown, queue and purchase pages."""

    def __init__(self, driver: Any, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url.rstrip("/")

    def open_countdown(self, sale_id: str) -> None:
        self.driver.get(f"{self.base_url}/?sale={quote(sale_id)}")

    def open_queue(self, sale_id: str) -> None:
        self.driver.get(f"{self.base_url}/queue.html?sale={quote(sale_id)}")

    def open_purchase(self, token: str) -> None:
        self.driver.get(f"{self.base_url}/purchase?token={quote(token)}")

    def phase(self) -> str | None:
        """Return the page's phase (data-phase on <main>), or None mid-load."""
        try:
            main = self.driver.find_element(By.TAG_NAME, "main")
            value = main.get_attribute("data-phase")
        except (NoSuchElementException, WebDriverException):
            return None
        return str(value) if value else None

    def wait_for_phase(self, *phases: str, timeout: float) -> str:
        """Wait until the page shows one of ``phases``; return the one it shows."""
        return self.wait_until(
            lambda: self.phase() if self.phase() in phases else None,
            timeout=timeout,
            what=f"phase {' or '.join(phases)}",
        )

    def wait_until(self, check: Any, *, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(POLL_SECONDS)
        raise AssertionError(
            f"The page did not show {what} within {timeout} s; it shows phase "
            f"{self.phase()!r} at {self.driver.current_url}: {self.text()!r}"
        )

    def text(self, element_id: str | None = None) -> str:
        try:
            if element_id is None:
                return str(self.driver.find_element(By.TAG_NAME, "body").text)
            return str(self.driver.find_element(By.ID, element_id).text)
        except (NoSuchElementException, WebDriverException):
            return ""

    def number(self, element_id: str) -> int | None:
        """Return the whole number shown in an element, or None if it shows none."""
        digits = self.text(element_id).replace(",", "")
        return int(digits) if digits.isdigit() else None

    def fan_id(self) -> str | None:
        value = self.driver.execute_script(
            "return localStorage.getItem(arguments[0]);", FAN_ID_KEY
        )
        return str(value) if value else None

    def choose_quantity(self, quantity: int) -> None:
        """Pick the number of tickets on the purchase page."""
        self.driver.find_element(
            By.CSS_SELECTOR, f"label[for='quantity-{quantity}']"
        ).click()

    def quantity_enabled(self, quantity: int) -> bool:
        """Return whether the purchase page still offers ``quantity`` tickets."""
        choice = self.driver.find_element(By.ID, f"quantity-{quantity}")
        return bool(choice.is_enabled())

    def buy(self) -> None:
        self.driver.find_element(By.ID, "buy-button").click()

    def trouble(self) -> str:
        """Return the trouble banner's text, or "" while it is hidden."""
        try:
            banner = self.driver.find_element(By.ID, "trouble")
        except NoSuchElementException:
            return ""
        return str(banner.text) if banner.is_displayed() else ""
