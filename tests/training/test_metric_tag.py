"""Per-class metric tags: one tag per class name, whatever its script."""

from braintumor.training.module import metric_tag


def test_class_names_in_any_script_get_distinct_tags():
    names = ["Глиома", "Менингиома", "Невринома", "神经胶质瘤", "脑膜瘤", "ग्लियोमा", "ग्लिओमा",
             "Glioma (T1)", "Glioma [T1]", "Glioma  T1", "Glioma T1", "Glioma_T1+"]  # fmt: skip
    tags = [metric_tag(name) for name in names]
    assert len(set(tags)) == len(names), dict(zip(names, tags, strict=True))
    assert metric_tag("Глиома") == "Глиома" and metric_tag("脑膜瘤") == "脑膜瘤"
    for tag in tags:
        assert " " not in tag and "/" not in tag and "(" not in tag


def test_tags_of_the_public_class_names_stay_as_they_were():
    assert metric_tag("Glioblastoma T1C+") == "Glioblastoma_T1C+"
    assert metric_tag("_NORMAL T2") == "_NORMAL_T2"
    assert metric_tag("Meningioma T1") == "Meningioma_T1"
