import pytest

from braintumor.data.datamodule import MRIDataModule
from braintumor.data.synthetic import CLASS_CATALOGUE
from braintumor.data.taxonomy import label_map, parse_folder, tumor_types
from braintumor.errors import DataError


def test_parse_folder_names_of_the_public_set():
    assert parse_folder("Meningioma T1C+") == ("Meningioma", "T1C+")
    assert parse_folder("_NORMAL T2") == ("_NORMAL", "T2")
    assert parse_folder("Glioma FLAIR") == ("Glioma", "FLAIR")
    assert parse_folder("glioma") is None
    assert parse_folder("brain tumor") is None


def test_44_folders_give_15_types_and_2_classes():
    assert len(set(label_map(CLASS_CATALOGUE, "folder").values())) == 44
    types = label_map(CLASS_CATALOGUE, "tumor_type")
    assert len(set(types.values())) == 15
    assert types["Meningioma T1C+"] == types["Meningioma T2"] == "Meningioma"
    binary = label_map(CLASS_CATALOGUE, "tumor_vs_normal")
    assert set(binary.values()) == {"normal", "tumor"}
    assert [f for f, v in binary.items() if v == "normal"] == ["_NORMAL T1", "_NORMAL T2"]


def test_unparseable_folders_are_named():
    with pytest.raises(DataError, match=r"\['glioma', 'pituitary'\]"):
        label_map(["glioma", "pituitary", "Meningioma T1"], "tumor_type")
    assert label_map(["glioma"], "folder") == {"glioma": "glioma"}
    with pytest.raises(ValueError, match="taxonomy"):
        label_map(["glioma"], "organ")


def test_tumor_types_of_class_names():
    assert tumor_types(["A T1", "A T2", "B T1"]) == ["A", "A", "B"]
    assert tumor_types(["A T1", "weird"]) is None


@pytest.mark.parametrize(("taxonomy", "n_classes"), [("tumor_type", 2), ("tumor_vs_normal", 2)])
def test_datamodule_uses_the_taxonomy(tiny_root, taxonomy, n_classes):
    # tiny_root holds _NORMAL T1, _NORMAL T2, Glioblastoma T1C+, Glioblastoma T2
    dm = MRIDataModule(tiny_root, image_size=32, num_workers=0, taxonomy=taxonomy)
    dm.setup()
    assert dm.num_classes == n_classes
    expected = ["Glioblastoma", "_NORMAL"] if taxonomy == "tumor_type" else ["normal", "tumor"]
    assert dm.class_names == expected
    assert dm.preprocessing.taxonomy == taxonomy
    assert sorted(set(dm.datasets["train"].targets)) == [0, 1]
