"""The reports in a real browser: Debian's headless Chromium driven by selenium (the `browser`
fixture of conftest.py; `make test` installs chromium and chromium-driver when they are missing).

:func:`check_report` opens a report file and checks what a reader sees: every image decoded,
every canvas drawn, every interactive series answering its slider (frame, map and the marker on
the cycler curve), its layer buttons and the pointer, and no JavaScript error logged.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

#: Flags that work as root on a machine with a closed network (the background-networking ones
#: keep Chromium from opening connections that would be refused).
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,1000")


def start_browser():
    """A headless Chromium (selenium WebDriver) with a fresh profile; ``driver.profile_dir`` is
    the profile folder to remove after ``quit()``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="ionscope-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.profile_dir = profile
    return driver


def stop_browser(driver) -> None:
    driver.quit()
    shutil.rmtree(driver.profile_dir, ignore_errors=True)


_CANVAS_STATS = """
return Array.from(document.querySelectorAll('canvas')).map(function(c){
  var d=c.getContext('2d').getImageData(0,0,c.width,c.height).data, seen={}, n=0;
  for(var i=0;i<d.length;i+=4*7){var k=d[i]+','+d[i+1]+','+d[i+2]+','+d[i+3];if(!seen[k]){seen[k]=1;n++;}}
  return {cls:c.className,w:c.width,h:c.height,colours:n};});
"""

_CANVAS_HASH = """
var c=arguments[0], d=c.getContext('2d').getImageData(0,0,c.width,c.height).data, h=0;
for(var i=0;i<d.length;i++){h=(h*31+d[i])|0;} return h;
"""

_PIXEL = """
var c=arguments[0], d=c.getContext('2d').getImageData(arguments[1],arguments[2],1,1).data; return [d[0],d[1],d[2]];
"""


def severe_logs(driver) -> list[str]:
    """Browser console entries at level SEVERE (JavaScript errors, failed loads) since the last
    call."""
    return [f"{e['level']}: {e['message']}" for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def check_report(driver, path: Path, *, series: int = 1, steps: int = 3) -> dict:
    """Open ``path`` and check it as a reader would; returns what was seen.

    Asserts: every ``<img>`` decoded (``naturalWidth > 0``); every canvas drawn (more than two
    colours); at least ``series`` interactive series; in each with a slider, ``steps`` presses of
    the right-arrow key on the slider (fewer in a shorter series) move the frame by as many, change the map, the frame
    label and the profile, and move the red marker on the cycler curve (read back from the
    curve's pixels); the second layer button changes the map; the pointer over the map gives
    a read-out with the unit and the position in nm; and no SEVERE console entry.
    """
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    severe_logs(driver)  # what an earlier page logged is not this page's
    driver.get(Path(path).resolve().as_uri())
    seen: dict = {"images": 0, "canvases": 0, "series": 0, "sliders": 0}
    images = driver.execute_script(
        "return Array.from(document.images).map(function(i){return [i.alt, i.complete, i.naturalWidth]});")
    bad = [alt for alt, complete, width in images if not (complete and width > 0)]
    assert not bad, f"images not decoded: {bad}"
    seen["images"] = len(images)
    stats = driver.execute_script(_CANVAS_STATS)
    blank = [s for s in stats if s["w"] == 0 or s["colours"] <= 2]
    assert not blank, f"blank canvases: {blank}"
    seen["canvases"] = len(stats)
    figures = driver.find_elements(By.CSS_SELECTOR, "figure.iseries")
    assert len(figures) >= series, f"{len(figures)} interactive series, expected {series} or more"
    seen["series"] = len(figures)
    for fig in figures:
        driver.execute_script("arguments[0].scrollIntoView({block:'center'});", fig)
        cmap = fig.find_element(By.CSS_SELECTOR, "canvas.is-map")
        sliders = fig.find_elements(By.CSS_SELECTOR, "input.is-slider")
        label = fig.find_element(By.CSS_SELECTOR, ".is-frame")
        if sliders:
            slider = sliders[0]
            n = int(slider.get_attribute("max")) + 1
            k0 = int(fig.get_attribute("data-frame"))
            steps = min(steps, n - 1 - k0)
            assert steps >= 1, "the series is too short for the slider test"
            curves = fig.find_elements(By.CSS_SELECTOR, "canvas.is-curve")
            before = {"map": driver.execute_script(_CANVAS_HASH, cmap), "label": label.text,
                      "profile": driver.execute_script(_CANVAS_HASH, fig.find_element(By.CSS_SELECTOR, "canvas.is-profile"))}
            marker0 = None
            if curves:
                marker0 = (int(curves[0].get_attribute("data-marker-x")), int(curves[0].get_attribute("data-marker-y")))
                assert driver.execute_script(_PIXEL, curves[0], *marker0) == [214, 39, 40], "no marker on the curve"
            slider.send_keys(*[Keys.ARROW_RIGHT] * steps)
            assert int(fig.get_attribute("data-frame")) == k0 + steps, "the slider did not move the frame"
            assert int(cmap.get_attribute("data-frame")) == k0 + steps, "the map does not show the slider's frame"
            assert label.text != before["label"], "the frame label did not follow the slider"
            assert driver.execute_script(_CANVAS_HASH, cmap) != before["map"], "the map did not change"
            assert driver.execute_script(
                _CANVAS_HASH, fig.find_element(By.CSS_SELECTOR, "canvas.is-profile")) != before["profile"], \
                "the profile did not follow the slider"
            if curves:
                marker = (int(curves[0].get_attribute("data-marker-x")), int(curves[0].get_attribute("data-marker-y")))
                assert int(curves[0].get_attribute("data-frame")) == k0 + steps, "the curve did not follow the slider"
                assert marker[0] > marker0[0], "the marker did not move along the time axis"
                assert driver.execute_script(_PIXEL, curves[0], *marker) == [214, 39, 40], "no marker where it says"
                assert driver.execute_script(_PIXEL, curves[0], *marker0) != [214, 39, 40], "the old marker stayed"
            seen["sliders"] += 1
        radios = fig.find_elements(By.CSS_SELECTOR, ".is-layers input")
        if len(radios) > 1:
            h = driver.execute_script(_CANVAS_HASH, cmap)
            radios[1].click()
            assert cmap.get_attribute("data-layer") == "1", "the layer button did not switch the layer"
            assert driver.execute_script(_CANVAS_HASH, cmap) != h, "the map did not change with the layer"
        # the pointer at the middle of the map area: the canvas adds 54 px of axis on the left, 86 on
        # the right (colour bar), 10 above and 36 below, so that is (-16, -13) px from its centre
        ActionChains(driver).move_to_element_with_offset(cmap, -16, -13).perform()
        readout = fig.find_element(By.CSS_SELECTOR, ".is-readout").text
        assert " nm" in readout and "=" in readout, f"no read-out under the pointer: {readout!r}"
        seen.setdefault("readouts", []).append(readout)
    errors = severe_logs(driver)
    assert not errors, f"JavaScript errors: {errors}"
    seen["digest"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
    return seen
