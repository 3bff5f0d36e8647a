from braintumor.data.duplicates import (
    combine_groups,
    exact_duplicate_sets,
    groups_from_pairs,
    near_duplicate_pairs,
)


def test_near_duplicate_pairs_by_hamming_distance():
    hashes = ["00" * 4, "01" + "00" * 3, "ff" * 4, "", "07" + "00" * 3]
    # bits differing: 0-1: 1, 0-4: 3, 1-4: 2, anything-2: >= 29; "" never matches
    assert near_duplicate_pairs(hashes, 1) == [(0, 1, 1)]
    assert sorted(near_duplicate_pairs(hashes, 3)) == [(0, 1, 1), (0, 4, 3), (1, 4, 2)]
    assert near_duplicate_pairs(hashes, 0) == []


def test_pairs_across_blocks_are_found():
    hashes = [f"{i:08x}" for i in range(0, 4000, 4)]  # neighbours differ in 1-2 bits
    small = near_duplicate_pairs(hashes, 1, block=7)
    big = near_duplicate_pairs(hashes, 1, block=5000)
    assert small == big and len(small) > 100


def test_groups_are_connected_components():
    assert groups_from_pairs(5, [(0, 1), (1, 2)]) == [0, 0, 0, 1, 2]


def test_combine_near_duplicates_with_patient_groups():
    near = [0, 0, 1, 2, 3]
    patients = [None, None, "p1", "p1", None]
    assert combine_groups(near, patients) == [0, 0, 1, 1, 2]


def test_exact_duplicate_sets():
    assert exact_duplicate_sets(["a", "b", "a", "", "", "b", "c"]) == [[0, 2], [1, 5]]
