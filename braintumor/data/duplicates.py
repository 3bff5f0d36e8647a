"""Exact and near-duplicate groups from fingerprints, and groups that keep scans together."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np


class UnionFind:
    """Disjoint sets over ``0..n-1``."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)

    def labels(self) -> list[int]:
        """A dense group id per item, numbered by first appearance."""
        ids: dict[int, int] = {}
        return [ids.setdefault(self.find(i), len(ids)) for i in range(len(self.parent))]


def _bits(hex_hashes: Sequence[str]) -> np.ndarray:
    """Hex hashes -> (n, bytes) uint8 array."""
    return np.array([np.frombuffer(bytes.fromhex(h), dtype=np.uint8) for h in hex_hashes])


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def near_duplicate_pairs(
    hex_hashes: Sequence[str], max_distance: int, block: int = 512
) -> list[tuple[int, int, int]]:
    """Index pairs ``(i, j, distance)``, ``i < j``, whose hashes differ in at most
    ``max_distance`` bits. Empty hashes (unreadable images) never match."""
    valid = [i for i, h in enumerate(hex_hashes) if h]
    if len(valid) < 2:
        return []
    bits = _bits([hex_hashes[i] for i in valid])
    if hasattr(np, "bitwise_count") and bits.shape[1] % 8 == 0:  # numpy >= 2: 64 bits at once
        words = np.ascontiguousarray(bits).view(np.uint64)
        columns = [np.ascontiguousarray(words[:, w]) for w in range(words.shape[1])]

        def distances(rows: slice) -> np.ndarray:
            total = np.zeros((len(columns[0][rows]), len(columns[0])), dtype=np.int32)
            for column in columns:
                total += np.bitwise_count(np.bitwise_xor(column[rows, None], column[None, :]))
            return total
    else:

        def distances(rows: slice) -> np.ndarray:
            xor = np.bitwise_xor(bits[rows][:, None, :], bits[None, :, :])
            return _POPCOUNT[xor].sum(-1, dtype=np.int32)

    pairs = []
    for start in range(0, len(valid), block):
        dist = distances(slice(start, start + block))
        rows, cols = np.nonzero(dist <= max_distance)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            i, j = start + r, c
            if i < j:
                pairs.append((valid[i], valid[j], int(dist[r, c])))
    return pairs


def groups_from_pairs(
    n: int, pairs: Sequence[tuple[int, int]] | Sequence[tuple[int, int, int]]
) -> list[int]:
    """Connected components of ``pairs`` over ``n`` items (singletons get their own id)."""
    sets = UnionFind(n)
    for pair in pairs:
        sets.union(pair[0], pair[1])
    return sets.labels()


def exact_duplicate_sets(digests: Sequence[str]) -> list[list[int]]:
    """Indices sharing a file digest, for every digest seen more than once."""
    by_digest: dict[str, list[int]] = defaultdict(list)
    for i, digest in enumerate(digests):
        if digest:
            by_digest[digest].append(i)
    return [members for members in by_digest.values() if len(members) > 1]


def combine_groups(*groupings: Sequence[object | None]) -> list[int]:
    """Items that share a (non-None) group id in any of ``groupings`` end up in one group."""
    n = len(groupings[0]) if groupings else 0
    sets = UnionFind(n)
    for grouping in groupings:
        first: dict[object, int] = {}
        for i, key in enumerate(grouping):
            if key is None:
                continue
            if key in first:
                sets.union(first[key], i)
            else:
                first[key] = i
    return sets.labels()
