"""The web page: a real server process, its JSON API, and the page in headless Chromium."""

import base64
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from braintumor.inference.loading import load_predictor
from braintumor.inference.web.backend import PageBackend, UploadError
from braintumor.inference.web.page import render_page
from tests.conftest import ROOT, free_port, wait_until_serving

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
MAX_UPLOAD_MB = 0.05


@pytest.fixture(scope="module")
def server(trained_ckpt):
    """``python -m braintumor app CKPT`` on a free port (default host); yields its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "braintumor", "app", str(trained_ckpt), "--port", str(port),
           "--max-upload-mb", str(MAX_UPLOAD_MB), "--device", "cpu", "--threads", "1"]  # fmt: skip
    process = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:  # at most ~60 s to import torch and load the model
        wait_until_serving(process, url, 60, "the app")
        yield url, process.stdout.readline()
    finally:
        process.terminate()
        process.wait(timeout=30)


def post(url: str, data: bytes, name: str = "scan.jpeg") -> tuple[int, dict]:
    request = urllib.request.Request(url + "/api/predict", data=data, method="POST",
                                     headers={"X-Filename": name})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def scan(tiny_root) -> Path:
    return sorted(tiny_root.rglob("*.jpeg"))[20]


def test_api_classifies_explains_and_refuses_bad_uploads(server, scan, trained_ckpt):
    url, banner = server
    assert f"{url} (research use only)" in banner  # bound to 127.0.0.1 by default
    status, result = post(url, scan.read_bytes(), "scan one.jpeg")
    assert status == 200 and result["file"] == "scan one.jpeg"
    predictor = load_predictor(trained_ckpt, "cpu")
    probs = predictor.predict_images([predictor.load(scan)])[0]
    assert [r["class"] for r in result["top"]] == [predictor.class_names[i] for i in
                                                   probs.argsort()[::-1]]  # fmt: skip
    assert result["top"][0]["probability"] == pytest.approx(float(probs.max()), abs=1e-6)
    assert result["in_distribution"] and result["confidence"] in ("high", "moderate", "low",
                                                                  "uncertain - refer")  # fmt: skip
    assert result["top"][0]["class"] in result["headline"] + result["detail"]
    assert 0 < result["seconds"] < 30
    shown = base64.b64decode(result["image"].removeprefix("data:image/png;base64,"))
    with Image.open(io.BytesIO(shown)) as picture, Image.open(scan) as original:
        assert (
            picture.size == original.size and (result["width"], result["height"]) == original.size
        )
    png = base64.b64decode(result["gradcam"].removeprefix("data:image/png;base64,"))
    with Image.open(io.BytesIO(png)) as overlay, Image.open(scan) as original:
        assert overlay.size == original.size
    assert result["gradcam_class"] == result["top"][0]["class"]

    status, result = post(url, b"name,class\nx,y\n", "table.csv")
    assert status == 400 and "not an image" in result["error"] and "table.csv" in result["error"]
    status, result = post(url, os.urandom(int(MAX_UPLOAD_MB * 1e6) + 10))
    assert status == 413 and "larger than the 0.05 MB limit" in result["error"]
    page = urllib.request.urlopen(url + "/").read().decode()
    assert "Research use only — not a medical device" in page
    info = json.loads(urllib.request.urlopen(url + "/api/info").read())
    assert info["validation_metrics"]["n"] > 0 and info["backend"] == "pytorch"


def test_classifier_on_an_onnx_file_explains_with_its_source_checkpoint(exported, scan, tmp_path):
    backend = PageBackend(exported[0], "cpu")
    names = backend.info()["class_names"]
    assert backend.info()["backend"] == "onnxruntime" and backend.metrics["n"] > 0
    result = backend.classify(scan.read_bytes(), "x.jpeg", target=names[0])
    assert result["gradcam"].startswith("data:image/png") and result["gradcam_class"] == names[0]
    assert len(result["top"]) == 4
    # a copy whose sidecar points to a checkpoint that is gone: predictions, no heatmap
    onnx_copy = Path(shutil.copy(exported[0], tmp_path / "copy.onnx"))
    meta = json.loads(exported[0].with_suffix(".json").read_text())
    meta["checkpoint"] = str(tmp_path / "gone.ckpt")
    onnx_copy.with_suffix(".json").write_text(json.dumps(meta))
    alone = PageBackend(onnx_copy, "cpu")
    result = alone.classify(scan.read_bytes(), "x.jpeg")
    assert result["gradcam"] is None and "not available" in result["gradcam_note"]
    assert result["top"][0]["class"] in names
    with pytest.raises(UploadError, match="unknown Grad-CAM class"):
        alone.classify(scan.read_bytes(), "x.jpeg", target="Nope")


def chromium(tmp_path: Path):
    """Headless Debian Chromium driven by Selenium through Debian's chromedriver."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        message = "needs Debian's chromium and chromium-driver (apt-get install; .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
    for flag in flags:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def screenshot(driver, tmp_path: Path, name: str) -> Path:
    """A PNG of the window (kept in $BRAINTUMOR_SCREENSHOTS too, when set, for a person)."""
    path = tmp_path / f"{name}.png"
    size = driver.get_window_size()
    width, height = size["width"], size["height"]
    full = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, max(height, full + 150))  # the whole page in one picture
    driver.save_screenshot(str(path))
    driver.set_window_size(width, height)
    if os.environ.get("BRAINTUMOR_SCREENSHOTS"):
        keep = Path(os.environ["BRAINTUMOR_SCREENSHOTS"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, keep / path.name)
    with Image.open(path) as picture:
        assert picture.width >= driver.execute_script("return window.innerWidth") * 0.9
        assert np.asarray(picture.convert("L")).std() > 10  # something is drawn
    return path


@pytest.mark.parametrize("width, height", [(1280, 1000), (390, 844)], ids=["desktop", "phone"])
def test_page_in_a_real_browser_at_desktop_and_phone_width(server, scan, trained_ckpt, tmp_path,
                                                          width, height):  # fmt: skip
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as visible
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = server
    expected = PageBackend(trained_ckpt, "cpu").classify(scan.read_bytes(), scan.name)
    assert expected["in_distribution"]
    blank = tmp_path / "blank.png"
    Image.new("L", (256, 256), 0).save(blank)
    not_an_image = tmp_path / "report.jpg"
    not_an_image.write_text("this is not a JPEG")
    too_big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(
        too_big
    )
    study = study_zip(tmp_path)
    expected_study = PageBackend(trained_ckpt, "cpu").classify(study.read_bytes(), study.name)
    assert expected_study["kind"] == "study"
    driver = chromium(tmp_path)
    driver.set_window_size(width, height)
    wait = WebDriverWait(driver, 30)
    shown = lambda element_id: driver.find_element(By.ID, element_id).is_displayed()  # noqa: E731
    text = lambda element_id: driver.find_element(By.ID, element_id).text  # noqa: E731
    try:
        driver.get(url)
        assert shown("notice") and "not a medical device" in text("notice")
        assert "macro F1" in text("metrics")
        identity = text("identity")
        assert trained_ckpt.name in identity and trained_ckpt.parents[1].name in identity
        assert "2 (counted from 0; step" in identity  # epoch_002.ckpt
        assert "4 classes" in identity and "32 x 32 px" in identity
        assert "refused instead of classified" in text("ood-check")

        def upload(path: Path) -> None:
            driver.find_element(By.ID, "file").send_keys(str(path))
            driver.find_element(By.ID, "submit").click()

        upload(scan)
        wait.until(visible.text_to_be_present_in_element((By.ID, "headline"),
                                                         expected["headline"]))  # fmt: skip
        assert text("headline") == expected["headline"] and shown("detail")
        bars = driver.find_elements(By.CSS_SELECTOR, "#bars .bar")
        assert len(bars) == 4 and bars[0].text.startswith(expected["top"][0]["class"])
        assert f"{100 * expected['top'][0]['probability']:.1f} %" in bars[0].text
        for picture in ("scan", "overlay"):
            element = driver.find_element(By.ID, picture)
            wait.until(lambda d, e=element: d.execute_script("return arguments[0].naturalWidth",
                                                             e) > 0)  # fmt: skip
            assert element.is_displayed()
        assert shown("legend-bar") and "strongest evidence" in text("legend")
        assert "Answered in" in text("timing") and " s on the server" in text("timing")
        scan_box = driver.find_element(By.ID, "scan-figure").rect
        overlay_box = driver.find_element(By.ID, "overlay-figure").rect
        if width >= 1000:  # side by side on a desktop, one above the other on a phone
            assert overlay_box["y"] == scan_box["y"] and overlay_box["x"] > scan_box["x"]
        else:
            assert overlay_box["y"] > scan_box["y"] + scan_box["height"] - 1
        no_sideways_scroll = "return document.documentElement.scrollWidth <= window.innerWidth"
        assert driver.execute_script(no_sideways_scroll)
        screenshot(driver, tmp_path, f"scan_{width}px")

        upload(blank)
        wait.until(visible.text_to_be_present_in_element((By.ID, "headline"), "Not an MRI scan"))
        assert "blank or nearly uniform" in text("detail") and "No class" in text("detail")
        assert not shown("probabilities") and not shown("overlay-figure") and shown("scan")
        assert driver.execute_script(no_sideways_scroll)
        screenshot(driver, tmp_path, f"blank_{width}px")

        upload(study)  # a zip of a DICOM study: one answer, its series, the driving slices
        wait.until(lambda d: d.find_element(By.ID, "study").is_displayed())
        assert text("headline") == expected_study["headline"] and not shown("scan-figure")
        assert len(driver.find_elements(By.CSS_SELECTOR, "#series tr")) == 2
        driving = driver.find_elements(By.CSS_SELECTOR, "#driving figure")
        assert len(driving) == len(expected_study["driving"]) >= 1
        assert "slice" in driving[0].text and driver.execute_script(no_sideways_scroll)
        screenshot(driver, tmp_path, f"study_{width}px")

        upload(not_an_image)
        error = wait.until(visible.visibility_of_element_located((By.ID, "error")))
        assert "not an image" in error.text and "report.jpg" in error.text
        assert not driver.find_element(By.ID, "result").is_displayed()

        upload(too_big)
        wait.until(lambda d: "limited to" in d.find_element(By.ID, "error").text)
        assert shown("error")
    finally:
        driver.quit()


def study_zip(tmp_path: Path) -> Path:
    """A zip of a two-series DICOM study (small enough for the test server's upload limit)."""
    from tests.dicom_studies import write_study_zip

    return write_study_zip(tmp_path)


def test_a_study_upload_gets_one_answer_and_leaves_nothing_behind(trained_ckpt, tmp_path,
                                                                  monkeypatch):  # fmt: skip
    import tempfile

    from tests.dicom_studies import CANARY

    monkeypatch.setenv("BRAINTUMOR_STUDY_SALT_FILE", str(tmp_path / "salt"))
    archive = study_zip(tmp_path)
    before = set(Path(tempfile.gettempdir()).iterdir())
    result = PageBackend(trained_ckpt, "cpu").classify(archive.read_bytes(), "study.zip")
    assert result["kind"] == "study" and result["study"].startswith("study-")
    assert {s["sequence"] for s in result["series"]} == {"T1C+", "T2"}
    assert all(d["image"].startswith("data:image/png") for d in result["driving"])
    assert CANARY not in json.dumps(result)
    left = [p for p in set(Path(tempfile.gettempdir()).iterdir()) - before
            if p.name.startswith("braintumor-study-")]  # fmt: skip
    assert not left


def png_header(width: int, height: int) -> bytes:
    """The first bytes of a grayscale PNG of ``width`` x ``height``: enough for PIL to open it
    (and see its size), nothing to decode."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_api_refuses_decompression_bombs_with_413(server):
    url, _ = server
    for width, height in [(20_000, 20_000), (7_000, 7_000)]:  # over PIL's limit; over ours
        status, result = post(url, png_header(width, height), "bomb.png")
        assert status == 413, result
        assert "bomb.png" in result["error"] and "too large to process" in result["error"]
        assert "at most 40 megapixels" in result["error"]


def test_gradcam_of_a_large_scan_is_drawn_at_most_1024_px(trained_ckpt):
    backend = PageBackend(trained_ckpt, "cpu")
    backend.predictor.calibration.pop("ood")  # noise, not a scan: classified all the same
    big = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (1200, 1500), dtype=np.uint8)).save(
        big, format="PNG"
    )
    result = backend.classify(big.getvalue(), "wide.png")
    png = base64.b64decode(result["gradcam"].removeprefix("data:image/png;base64,"))
    with Image.open(io.BytesIO(png)) as overlay:
        assert overlay.size == (1024, 819)


def test_last_ckpt_is_served_without_the_best_checkpoints_metrics(trained_ckpt, exported, tmp_path):
    best, last = trained_ckpt, trained_ckpt.parent / "last.ckpt"
    recorded = json.loads((best.parents[1] / "reports" / "val_metrics.json").read_text())
    assert recorded["checkpoint"] == str(best)  # the run's metrics are those of the best one
    served = PageBackend(last, "cpu")
    assert served.metrics is None and served.info()["validation_metrics"] is None
    note = f"holds the metrics of {best.name}, not of this file"
    assert (
        note in served.metrics_note and "no validation metrics for last.ckpt" in served.metrics_note
    )
    page = render_page(served.info(), 1000)
    assert note in page and "macro F1" not in page
    assert PageBackend(best, "cpu").metrics["n"] > 0  # the best checkpoint shows its own

    # an ONNX sidecar written before the check: last.ckpt's export with the best one's metrics
    onnx = Path(shutil.copy(exported[0], tmp_path / "old.onnx"))
    meta = json.loads(exported[0].with_suffix(".json").read_text())
    assert meta["validation_metrics"]["checkpoint"] == str(best)
    onnx.with_suffix(".json").write_text(json.dumps({**meta, "checkpoint": str(last)}))
    old = PageBackend(onnx, "cpu")
    assert (
        old.metrics is None and f"holds those of {best.name}, not of last.ckpt" in old.metrics_note
    )


def test_the_page_links_the_model_card_and_an_onnx_export_carries_it(server, exported):
    url, _ = server
    card = urllib.request.urlopen(url + "/model-card").read().decode()
    assert "Research use only" in card and "## Calibration" in card
    assert 'href="model-card"' in urllib.request.urlopen(url + "/").read().decode()
    from braintumor.inference.export import model_card_beside

    onnx_path, _ = exported
    assert model_card_beside(onnx_path).read_text() == card


def test_a_referred_upload_says_uncertain(server, scan, trained_ckpt):
    from braintumor.inference.torch_predictor import TorchPredictor

    url, _ = server
    status, result = post(url, scan.read_bytes())
    assert status == 200 and isinstance(result["abstain"], bool)
    predictor = TorchPredictor.from_checkpoint(trained_ckpt, device="cpu")
    top = result["top"][0]["probability"]
    threshold = predictor.threshold
    assert result["abstain"] == (threshold is not None and top < threshold)


def test_app_argument_mistakes_are_one_line_and_exit_code_2(exported, server, tmp_path):
    busy = int(server[0].rsplit(":", 1)[1])
    cases = {
        (str(tmp_path / "gone.onnx"),): "gone.onnx' does not exist",
        (str(exported[0]), "--port", "70000"): "a port is a number from 1 to 65535",
        (str(exported[0]), "--port", str(busy)): f"cannot serve on 127.0.0.1:{busy}",
        (str(exported[0]), "--max-upload-mb", "0"): "--max-upload-mb 0.0: it must be positive",
        (str(exported[0]), "--threads", "0"): "--threads 0: it must be at least 1",
        (str(exported[0]), "--metrics", str(tmp_path / "m.json")): "m.json does not exist",
    }
    for args, expected in cases.items():
        cmd = [sys.executable, "-m", "braintumor", "app", *args]
        result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr[-2000:]
        assert result.stderr.startswith("error: ") and expected in result.stderr
