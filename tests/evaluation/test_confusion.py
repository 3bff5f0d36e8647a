"""Confusion matrices that stay readable at 44 classes: label size, numbered cells, support,
a colour scale on which 1 differs from 0, rows of few images marked, the tumor-type matrix and
the interactive HTML page."""

from __future__ import annotations

import json
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from PIL import Image

from braintumor.data.taxonomy import tumor_types
from braintumor.evaluation import write_split_reports
from braintumor.evaluation.confusion import (
    MIN_LABEL_PX,
    ConfusionLayout,
    confusion_counts_matrix,
    plot_confusion_matrix,
)
from braintumor.evaluation.confusion_report import write_confusion_reports

TYPES = ["Astrocitoma", "Carcinoma", "Ependimoma", "Ganglioglioma", "Germinoma", "Glioblastoma",
         "Granuloma", "Meduloblastoma", "Meningioma", "Neurocitoma", "Oligodendroglioma",
         "Papiloma", "Schwannoma", "Tuberculoma"]  # fmt: skip
# the 44 folders of the public set: 14 tumor types x 3 sequences (two missing) + 2 normal
FOLDERS = [f"{t} {s}" for t in TYPES for s in ("T1", "T1C+", "T2")][:42]
NAMES_44 = sorted([*FOLDERS, "_NORMAL T1", "_NORMAL T2"])


def predictions_44(seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Synthetic 44-class predictions: 1 to 59 images per class, 80% right, rest anywhere."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(44), rng.integers(1, 60, 44))
    pred = np.where(rng.random(len(y)) < 0.8, y, rng.integers(0, 44, len(y)))
    paths = [f"{NAMES_44[t]}/scan_{i:04d}.jpg" for i, t in enumerate(y)]
    return y, pred, paths


def cell_texts(ax) -> dict[tuple[int, int], str]:
    """The numbers drawn inside the cells of a matrix panel, by (row, column)."""
    return {
        (round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
        for t in ax.texts
        if t.get_text()
    }


@pytest.fixture(scope="module")
def figure_44():
    y, pred, _ = predictions_44()
    fig = plot_confusion_matrix(y, pred, NAMES_44, title="test (n=...)", min_support=10)
    yield fig, confusion_counts_matrix(y, pred, 44)
    plt.close(fig)


def test_every_text_of_the_44_class_figure_is_at_least_9_px_tall(figure_44):
    fig, _ = figure_44
    texts = [t for t in fig.findobj(Text) if t.get_text() and t.get_visible()]
    assert len(texts) > 44 * 4  # tick labels of both panels, supports, cell numbers
    smallest = min(t.get_fontsize() for t in texts)
    assert smallest * fig.dpi / 72 >= MIN_LABEL_PX
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == NAMES_44


@pytest.mark.parametrize("n", [2, 4, 12, 15, 25, 44, 60])
def test_the_layout_follows_the_class_count_and_never_shrinks_labels(n):
    layout = ConfusionLayout.for_classes(n)
    assert layout.label_px >= MIN_LABEL_PX
    assert layout.cell * 72 >= 4.5 * layout.font * 0.6  # "0.00" fits in a cell
    assert n * layout.cell >= 2.9  # small matrices still get a readable panel


def test_the_saved_png_keeps_the_figure_dpi(tmp_path):
    y, pred, paths = predictions_44()
    png = write_confusion_reports(tmp_path, "test", y, pred, NAMES_44, paths, min_support=10)[0]
    fig = plot_confusion_matrix(y, pred, NAMES_44, title="test (n=1)", min_support=10)
    width, height = Image.open(png).size
    assert (width, height) == pytest.approx(tuple(fig.get_size_inches() * fig.dpi), abs=2)
    plt.close(fig)


def test_every_nonzero_cell_is_numbered_at_44_classes(figure_44):
    fig, counts = figure_44
    counts_ax, rates_ax = fig.axes[0], fig.axes[2]
    drawn = cell_texts(counts_ax)
    nonzero = {(int(i), int(j)) for i, j in zip(*np.nonzero(counts), strict=True)}
    assert set(drawn) == nonzero  # every non-zero cell, no empty one
    assert all(drawn[c] == str(counts[c]) for c in nonzero)
    rates = cell_texts(rates_ax)
    assert set(rates) == nonzero
    support = counts.sum(axis=1)
    for (i, j), text in rates.items():
        expected = (
            f"{counts[i, j]}/{support[i]}"
            if support[i] < 10
            else f"{counts[i, j] / support[i]:.2f}"
        )
        assert text == expected


def test_support_is_printed_beside_each_row(figure_44):
    fig, counts = figure_44
    side = fig.axes[0].child_axes[0]  # the counts panel's right-hand axis
    labels = [t.get_text() for t in side.get_yticklabels()]
    assert labels == [str(s) for s in counts.sum(axis=1)]


def test_one_image_is_coloured_differently_from_none(figure_44):
    fig, _ = figure_44
    image = fig.axes[0].images[0]
    one = np.array(image.cmap(image.norm(1)))
    empty = np.array(image.cmap.get_bad())
    empty = np.ones(4) if empty[3] == 0 else empty  # transparent: the white axes behind
    assert np.abs(one[:3] - empty[:3]).max() > 0.15


def test_rows_with_few_images_are_hatched_in_the_normalized_panel(figure_44):
    fig, counts = figure_44
    hatched = {
        round(p.get_y() + 0.5)
        for p in fig.axes[2].patches
        if isinstance(p, Rectangle) and p.get_hatch()
    }
    assert hatched == {int(i) for i in np.nonzero(counts.sum(axis=1) < 10)[0]}
    assert hatched  # the synthetic data has some


def test_a_44_class_report_also_writes_the_tumor_type_matrix(tmp_path):
    y, pred, paths = predictions_44()
    probs = np.eye(44)[pred] * 0.9 + 0.1 / 44
    types = tumor_types(NAMES_44)
    write_split_reports(tmp_path, "test", y, probs, NAMES_44, collapse={"tumor_type": types},
                        paths=paths, ece_bins=15, min_support=10)  # fmt: skip
    for stem in ("confusion_matrix_test", "confusion_matrix_test_tumor_type"):
        assert (tmp_path / f"{stem}.png").stat().st_size > 10_000
        assert (tmp_path / f"{stem}.html").stat().st_size > 1_000
    page = (tmp_path / "confusion_matrix_test_tumor_type.html").read_text()
    data = json.loads(re.search(r'id="confusion-data">(.*?)</script>', page).group(1))
    assert len(data["classes"]) == 15 and "Meningioma" in data["classes"]
    assert np.array(data["counts"]).sum() == len(y)
    merged = sum(1 for t, p in zip(y, pred, strict=True) if types[t] == types[p])
    assert np.trace(np.array(data["counts"])) == merged


def test_the_html_matrix_is_self_contained_and_shows_cells_on_hover(tmp_path):
    y, pred, paths = predictions_44()
    write_confusion_reports(tmp_path, "val", y, pred, NAMES_44, paths, min_support=10)
    page = (tmp_path / "confusion_matrix_val.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing fetched
    assert "<svg" in page and "<script>" in page
    data = json.loads(re.search(r'id="confusion-data">(.*?)</script>', page).group(1))
    counts = confusion_counts_matrix(y, pred, 44)
    assert data["counts"] == counts.tolist() and data["classes"] == NAMES_44
    i, j = next((int(a), int(b)) for a, b in zip(y, pred, strict=True) if a != b)
    first = next(p for p, a, b in zip(paths, y, pred, strict=True) if (a, b) == (i, j))
    assert first in data["examples"][f"{i},{j}"]
    tip = f"true: {NAMES_44[i]} | predicted: {NAMES_44[j]} | count: {counts[i, j]} ("
    assert tip in page  # the native tooltip of that cell
    assert len(data["examples"][f"{i},{i}"]) <= 5


def test_hovering_a_cell_in_a_real_browser_shows_its_classes_count_and_files(tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from tests.inference.web.test_app import chromium

    y, pred, paths = predictions_44()
    write_confusion_reports(tmp_path, "test", y, pred, NAMES_44, paths, min_support=10)
    i, j = next((int(a), int(b)) for a, b in zip(y, pred, strict=True) if a != b)
    first = next(p for p, a, b in zip(paths, y, pred, strict=True) if (a, b) == (i, j))
    count = int(confusion_counts_matrix(y, pred, 44)[i, j])
    driver = chromium(tmp_path)
    try:
        driver.get((tmp_path / "confusion_matrix_test.html").as_uri())
        cell = driver.find_element(By.CSS_SELECTOR, f'rect.c[data-i="{i}"][data-j="{j}"]')
        driver.set_window_size(1600, 1200)
        driver.execute_script(
            "arguments[0].scrollIntoView({block: 'center', inline: 'center'})", cell
        )
        ActionChains(driver).move_to_element(cell).perform()
        info = driver.find_element(By.ID, "info").text
    finally:
        driver.quit()
    assert f"true: {NAMES_44[i]}" in info and f"predicted: {NAMES_44[j]}" in info
    assert f"count: {count} (" in info and first in info


def test_labels_outside_the_class_names_are_refused_and_an_empty_split_is_drawn(tmp_path):
    with pytest.raises(ValueError, match=r"in \[0, 2\) for 2 class names, got \[3\]"):
        confusion_counts_matrix(np.array([3]), np.array([0]), 2)
    empty = np.zeros(0, dtype=int)
    write_confusion_reports(tmp_path, "test", empty, empty, ["a", "b"], [], min_support=10)
    assert (tmp_path / "confusion_matrix_test.png").stat().st_size > 0
