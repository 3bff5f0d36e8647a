import pytest

from braintumor.data.label_maps import (
    FAMILIES,
    LABEL_MAP_DIR,
    SEQUENCES,
    load_label_map,
    map_labels,
)
from braintumor.errors import DataError
from tests.data.public_sets import NICKPARVAR, SEVENTEEN


@pytest.mark.parametrize("source", ["brain44c", "brain17c", "nickparvar4", "figshare3", "br35h"])
def test_every_public_set_has_a_valid_map(source):
    mapping = load_label_map(source)
    assert mapping and all(seq in SEQUENCES for _, seq in mapping.values())
    assert {fam for fam, _ in mapping.values()} <= {*FAMILIES, "tumor"}


def test_44c_types_map_to_families_with_each_sequence():
    mapping = load_label_map("brain44c")
    assert len(mapping) == 45  # 15 types x 3 sequences (the set has 44 of them)
    for glioma in ("Astrocitoma", "Glioblastoma", "Oligodendroglioma", "Ependimoma"):
        assert mapping[f"{glioma} T1C+"] == ("glioma", "T1C+")
    assert mapping["_NORMAL T2"] == ("normal", "T2")
    assert mapping["Schwannoma T1"] == ("other_tumor", "T1")


def test_17c_long_names_map_even_with_other_details_or_decomposed_accents():
    labels = list(SEVENTEEN)
    decomposed = "Outros Tipos de Leso\u0303es (Abscessos, Cistos, Encefalopatias Diversas) T1"
    variant = "Meningioma (Grau I a III) T1C+"  # other details in the parenthesis
    found = map_labels("brain17c", [*labels, decomposed, variant])
    assert found[labels[0]] == ("glioma", "T1C+")
    assert found[decomposed] == ("other_tumor", "T1")
    assert found[variant] == ("meningioma", "T1C+")


def test_user_csv_overrides_a_line_and_keeps_the_rest(tmp_path):
    override = tmp_path / "mine.csv"
    override.write_text("source_label,family,sequence\npituitary,other_tumor,T1C+\n")
    found = map_labels("nickparvar4", list(NICKPARVAR), override)
    assert found["pituitary"] == ("other_tumor", "T1C+")
    assert found["notumor"] == ("normal", "unknown")


def test_missing_label_names_the_label_and_the_map_files(tmp_path):
    override = tmp_path / "mine.yaml"
    override.write_text("labels:\n  glioma: [glioma, T2]\n")
    with pytest.raises(DataError) as error:
        map_labels("nickparvar4", ["glioma", "astro"], override)
    text = str(error.value)
    assert "'astro'" in text and str(LABEL_MAP_DIR / "nickparvar4.yaml") in text
    assert str(override) in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("labels:\n  a: [tumour, T1]\n", "family 'tumour'"),
        ("labels:\n  a: [glioma, FLAIR]\n", "sequence 'FLAIR'"),
        ("labels:\n  a: glioma\n", r"\[family, sequence\]"),
        ("other: 1\n", "needs 'labels"),
    ],
)
def test_bad_user_maps_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_label_map("nickparvar4", str(path))


def test_a_source_without_a_map_needs_one():
    with pytest.raises(DataError, match="no label map for source 'mydata'"):
        load_label_map("mydata")
