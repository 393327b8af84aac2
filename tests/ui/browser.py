"""Headless Chromium for the UI's browser test and bench/ui.py, driven by Selenium.

Debian's ``chromium`` and ``chromium-driver`` are installed with apt-get when missing (CI
runs as root on a fresh machine). Selenium is pointed at that chromedriver, so its own
driver manager never tries to download one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,900",
)


def ensure_chromium() -> tuple[str, str]:
    """The paths of chromium and chromedriver, installed by apt-get if missing."""
    browser = shutil.which("chromium") or (CHROMIUM if os.path.exists(CHROMIUM) else None)
    driver = shutil.which("chromedriver") or (
        CHROMEDRIVER if os.path.exists(CHROMEDRIVER) else None
    )
    if browser and driver:
        return browser, driver
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=True, env=env, capture_output=True, timeout=600)
    subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", "chromium", "chromium-driver"],
        check=True,
        env=env,
        capture_output=True,
        timeout=900,
    )
    return CHROMIUM, CHROMEDRIVER


@contextmanager
def chromium() -> Iterator[Any]:
    """A Selenium WebDriver on a fresh headless Chromium profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = ensure_chromium()
    profile = tempfile.mkdtemp(prefix="k8sco-ui-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
