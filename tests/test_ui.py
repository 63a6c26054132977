"""The Dagster UI as users open it (`make ui`): the webserver and daemon on 127.0.0.1, Debian's Chromium driven by
Selenium to the asset graph, and a small materialization launched through the webserver's GraphQL API."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resources.home import Home
from tests.dialogue_rows import write_dialogues

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
GROUPS = {
    "generate": ("seed_snippets", "seed_rejects", "oss_instruct_problems", "problem_rejects", "verified_dialogues",
                 "dialogue_rejects", "method_dialogues", "method_rejects"),
    "curate": ("deduplicated_dialogues", "dedup_rejects", "decontaminated_dialogues", "contamination_report"),
    "datasets": ("sft_dataset",),
    "publish": ("hub_dataset",),
}
ALL_ASSETS = [name for names in GROUPS.values() for name in names]
DISMISS_LABELS = ("Dismiss", "Close", "Got it", "No thanks", "Skip", "Maybe later", "Not now")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dagster dev exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"the webserver did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """`make ui`'s command (dagster dev: webserver + daemon) on a free port, over a CRUCIBLE_HOME with curated
    dialogues of two sources, so the dataset job has input."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            pytest.fail(f"{path} missing: `make setup` installs Debian's chromium and chromium-driver (as root)")
    home = tmp_path_factory.mktemp("ui") / "home"
    env = {**os.environ, "CRUCIBLE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    write_dialogues("stdlib", range(8), home=Home(home))
    write_dialogues("mylib", range(40, 44), home=Home(home))
    subprocess.run([sys.executable, "-c", "from resources.dagster_home import dagster_home; dagster_home()"],
                   cwd=ROOT, env=env, check=True)
    port = free_port()
    log = home / "dagster-dev.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "dagster"), "dev", "-h", "127.0.0.1", "-p",
                                 str(port), "-w", str(ROOT / "workspace.yaml")], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(url, proc, log)
        yield url, port, home
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # Tall enough for the asset catalog to render every row: it draws only the rows in view, and at 1,000 px the
    # last assets were not in the page.
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,2400",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def dismiss_dialogs(driver) -> int:
    """Click away first-run dialogs (Dagster's community/what's-new modals); returns how many."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    closed = 0
    for _ in range(5):
        buttons = [b for b in driver.find_elements(By.CSS_SELECTOR, "[role=dialog] button, .bp5-dialog button")
                   if b.is_displayed() and b.text.strip() in DISMISS_LABELS]
        if not buttons:
            break
        buttons[0].click()
        closed += 1
        time.sleep(0.5)
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    return closed


@pytest.mark.slow
def test_asset_graph_shows_the_pipeline(ui, browser):
    from selenium.webdriver.support.ui import WebDriverWait

    url, _, home = ui
    # The catalog lists every asset. Our dagster.yaml turns Dagster's first-visit community dialog off; any other
    # first-run modal (what's new) is clicked away until none is left.
    browser.get(f"{url}/assets")
    WebDriverWait(browser, 90).until(lambda d: all(name in d.page_source for name in ALL_ASSETS))
    WebDriverWait(browser, 30).until(lambda d: dismiss_dialogs(d) == 0)
    assert "Join the Dagster" not in browser.page_source
    # Each group's lineage graph draws its assets (and the edges to its neighbours' assets).
    shots = home / "reports" / "ui"
    shots.mkdir(parents=True, exist_ok=True)
    for group, names in GROUPS.items():
        browser.get(f"{url}/locations/definitions/asset-groups/{group}")
        WebDriverWait(browser, 60).until(lambda d: all(name in d.page_source for name in names))
        shot = shots / f"asset_graph_{group}.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    artifacts = os.environ.get("CRUCIBLE_TEST_ARTIFACTS")
    if artifacts:
        shutil.copytree(shots, Path(artifacts) / "ui", dirs_exist_ok=True)


@pytest.mark.slow
def test_a_materialization_launched_through_graphql_succeeds(ui, browser):
    from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError
    from selenium.webdriver.support.ui import WebDriverWait

    url, port, home = ui
    client = DagsterGraphQLClient("127.0.0.1", port_number=port)
    run_id = client.submit_job_execution("dataset")
    deadline = time.monotonic() + 240
    status = None
    while time.monotonic() < deadline:
        try:
            status = client.get_run_status(run_id).value
        except DagsterGraphQLClientError:
            status = None
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(2)
    log = (home / "dagster-dev.log").read_text()[-3000:]
    assert status == "SUCCESS", f"run {run_id} ended {status}\n{log}"
    assert (home / "hub" / "datasets" / "crucible-code-feedback" / "README.md").is_file()
    # The run shows in the UI's run page.
    browser.get(f"{url}/runs/{run_id}")
    dismiss_dialogs(browser)
    WebDriverWait(browser, 60).until(lambda d: "sft_dataset" in d.page_source and "Success" in d.page_source)


@pytest.mark.slow
def test_the_asset_page_shows_columns_and_row_count(ui, browser):
    """After the dataset run (the test above), sft_dataset's overview lists its declared columns with their
    meanings (dagster/column_schema) and the row count the IO manager recorded (dagster/row_count)."""
    from selenium.webdriver.support.ui import WebDriverWait

    from assets.schemas import COLUMN_DOCS

    url, _, home = ui
    browser.get(f"{url}/assets/sft_dataset?view=overview")
    dismiss_dialogs(browser)
    WebDriverWait(browser, 90).until(lambda d: "Columns" in d.page_source and COLUMN_DOCS["split"] in d.page_source)
    page = browser.page_source
    assert COLUMN_DOCS["dataset_version"] in page and COLUMN_DOCS["problem_id"] in page
    WebDriverWait(browser, 30).until(lambda d: "Row count" in d.page_source)
    # The status panel: "Row count" then the value, 8 + 4 curated dialogues in the fixture's two sources.
    text = re.sub(r"(\s*<[^>]+>\s*)+", "|", browser.page_source)
    assert "|Row count|12|" in text, text[text.find("Row count") - 200:text.find("Row count") + 200]
    shots = home / "reports" / "ui"
    shots.mkdir(parents=True, exist_ok=True)
    shot = shots / "asset_sft_dataset_overview.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    artifacts = os.environ.get("CRUCIBLE_TEST_ARTIFACTS")
    if artifacts:
        shutil.copytree(shots, Path(artifacts) / "ui", dirs_exist_ok=True)
