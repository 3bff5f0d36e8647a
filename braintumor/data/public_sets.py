"""The public brain-tumour MRI sets the framework knows: where each comes from and its layout.

These are facts about the downloads (not settings): a run names a set with ``data=<name>`` or
``data=merged data.sources=[...]``, and ``python -m braintumor download <name>`` fetches it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PublicSet:
    """One public set: its layout, what its folders hold, and where to get it."""

    name: str
    layout: str  # folder | presplit | figshare (see braintumor.data.sources)
    kaggle: str | None = None  # owner/dataset on Kaggle, fetched with kagglehub
    urls: tuple[str, ...] = ()  # direct download(s) when the set is not on Kaggle
    page: str = ""
    licence: str = ""
    exclude_folders: tuple[str, ...] = ()  # folders of the download that are not classes


PUBLIC_SETS: dict[str, PublicSet] = {
    s.name: s
    for s in (
        PublicSet(
            "brain44c", "folder", kaggle="fernando2rad/brain-tumor-mri-images-44c",
            page="https://www.kaggle.com/datasets/fernando2rad/brain-tumor-mri-images-44c",
            licence="CC BY-NC-SA 3.0 (images from Radiopaedia cases)",
        ),
        PublicSet(
            "brain17c", "folder", kaggle="fernando2rad/brain-tumor-mri-images-17-classes",
            page="https://www.kaggle.com/datasets/fernando2rad/brain-tumor-mri-images-17-classes",
            licence="CC BY-NC-SA 3.0 (images from Radiopaedia cases)",
        ),
        PublicSet(
            "nickparvar4", "presplit", kaggle="masoudnickparvar/brain-tumor-mri-dataset",
            page="https://www.kaggle.com/datasets/masoudnickparvar/brain-tumor-mri-dataset",
            licence="CC0 1.0 (as its Kaggle page states; it repackages figshare, SARTAJ, Br35H)",
        ),
        PublicSet(
            "figshare3", "figshare",
            urls=("https://figshare.com/ndownloader/articles/1512427",),  # all files, one zip
            page="https://doi.org/10.6084/m9.figshare.1512427",
            licence="CC BY 4.0",
        ),
        PublicSet(
            "br35h", "folder", kaggle="ahmedhamada0/brain-tumor-detection",
            page="https://www.kaggle.com/datasets/ahmedhamada0/brain-tumor-detection",
            licence="see its Kaggle page",
            exclude_folders=("pred",),
        ),
    )
}  # fmt: skip
