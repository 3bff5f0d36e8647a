"""Exact and near-duplicate groups from fingerprints, and groups that keep scans together."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def components(n: int, edges: Sequence[tuple[int, int]]) -> list[int]:
    """Connected components of ``edges`` over ``0..n-1`` (``scipy.sparse.csgraph``): a dense
    group id per item, numbered by first appearance."""
    if n == 0:
        return []
    rows = np.fromiter((e[0] for e in edges), dtype=np.int64, count=len(edges))
    cols = np.fromiter((e[1] for e in edges), dtype=np.int64, count=len(edges))
    graph = coo_matrix((np.ones(len(edges), dtype=np.int8), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    ids: dict[int, int] = {}
    return [ids.setdefault(label, len(ids)) for label in labels.tolist()]


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
    return components(n, [(p[0], p[1]) for p in pairs])


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
    edges = []
    for grouping in groupings:
        first: dict[object, int] = {}
        for i, key in enumerate(grouping):
            if key is not None:
                edges.append((first.setdefault(key, i), i))
    return components(n, edges)
