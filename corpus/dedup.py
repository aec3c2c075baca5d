"""De-duplication of programs: exact (normalised code) and near-duplicate (MinHash with LSH).

Exact duplicates share :func:`normalised_sha256`: the code of every pass with comments removed and
whitespace collapsed, so re-indenting or re-commenting a shader does not make it a new program.

Near duplicates are found by :func:`find_near_duplicates`, a step over ``(item id, code)`` pairs
in creation order. Each program becomes a MinHash signature over the shingles (``shingle_size``
consecutive tokens) of its comment-stripped code; LSH banding proposes candidate pairs, the
estimated Jaccard similarity of the signatures confirms them, and union-find groups confirmed
pairs so that every duplicate points at the earliest program of its group.

Signatures are computed in bulk, as datatrove does, rather than one ``hashlib`` call per shingle
as :class:`datasketch.MinHash` does: each distinct token is hashed once (blake2b), shingle hashes
are combined from token hashes with numpy, and the ``num_perm`` hash functions are applied as one
broadcast. The hash functions are Dietzfelbinger's multiply-add-shift family,
``h(x) = ((a * x + b) mod 2**64) >> 32`` for 32-bit ``x`` with random 64-bit ``a`` (odd) and
``b``: as universal as datasketch's ``(a * x + b) mod (2**61 - 1)`` and cheaper, since uint64
arithmetic wraps by itself. Every random parameter is derived from ``seed`` with blake2b, so
signatures do not change with the numpy version.
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import operator
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from corpus.glsl import strip_comments  # re-exported: de-duplication reads code without comments

__all__ = [
    "DuplicatePair",
    "MinHasher",
    "estimate_jaccard",
    "find_near_duplicates",
    "lsh_parameters",
    "normalise_code",
    "normalised_sha256",
    "strip_comments",
    "tokenize",
]

# One token, with any whitespace and comments before it skipped (possessively, so trailing
# whitespace costs no backtracking); ``\Z`` lets the skip succeed at the end, adding an empty
# match that :func:`tokenize` drops. Equivalent to ``findall`` on :func:`strip_comments`'s output,
# in one pass. The most frequent kinds of token come first.
_TOKEN = re.compile(
    r"""
    (?:\s++|//[^\n]*+|/\*(?s:.*?)(?:\*/|\Z))*+
    (
      [^\W\d]\w*                                  # identifier or keyword
    | [(){}\[\],;?:~]                              # punctuation that starts no longer operator
    | <<=?|>>=?|[-+*/%&|^<>=!]=|\+\+|--|&&|\|\||\^\^|\#\#
    | (?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\w*     # number as written: 1.0, 1., .5, 2e-3, 0xFFu, 1.0lf
    | "[^"\n]*"                                   # an #include path
    | \S                                          # any other character on its own
    | \Z
    )
    """,
    re.VERBOSE,
)
_PASS_SEPARATOR = "\x00"
_TOKEN_HASH_KEY = b"imageprograms.dedup.token"
_U64_MAX = np.uint64(0xFFFF_FFFF_FFFF_FFFF)

#: Programs per bulk step: about 650,000 shingles, 5 MB each of hashes and owners, for 2 KB code.
SIGNATURE_CHUNK = 1_000
#: Shingles per permutation block: 128 x 8,192 x 8 B = 8 MB of scratch, reused.
_BLOCK_SHINGLES = 8_192
#: Bucket-mates compared with each other in LSH (by position); larger buckets also pair every
#: member with the bucket's earliest member, so a bucket of n costs O(n), never O(n**2).
_BUCKET_WINDOW = 8
#: ``(false_positive_weight, false_negative_weight)`` for choosing LSH bands and rows. Every
#: candidate pair is confirmed on its signatures, so a false candidate costs one comparison while
#: a missed one is a lost duplicate: at 0.85 and 128 permutations this picks 12 bands of 10 rows,
#: which proposes 93 % of pairs at similarity 0.85 and 98 % at 0.88 (datasketch's equal weights:
#: 8 x 16, 46 % and 67 %).
LSH_WEIGHTS = (0.05, 0.95)


# Bytes that count as word characters when deciding whether a space separates two tokens:
# ASCII letters, digits and ``_``, and every byte of a non-ASCII character (identifiers outside
# ASCII are not GLSL, so this only has to be consistent, not exact).
_WORD_BYTES = np.zeros(256, dtype=bool)
for _c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_":
    _WORD_BYTES[_c] = True
_WORD_BYTES[0x80:] = True


def _normalised_bytes(code: str) -> bytes:
    # str.split() collapses whitespace in C; numpy then drops every space that does not stand
    # between two word bytes. Both are ~10x faster than the equivalent regular expressions,
    # which matters because this runs on every imported program.
    text = " ".join(strip_comments(code).replace(_PASS_SEPARATOR, " ").split())
    data = text.encode("utf-8", "surrogatepass")
    arr = np.frombuffer(data, dtype=np.uint8)
    spaces = arr == 32
    if not spaces.any():
        return data
    word = _WORD_BYTES[arr]
    keep = ~spaces
    keep[1:-1] |= word[:-2] & word[2:]
    return arr[keep].tobytes()


def normalise_code(code: str) -> str:
    """Return ``code`` without comments and with whitespace reduced to what separates tokens.

    Every whitespace run becomes one space between two word characters (``float x``) and
    disappears elsewhere (``a + b`` becomes ``a+b``). NUL characters, which GLSL forbids, count
    as whitespace, so that :func:`normalised_sha256` can use NUL as its pass separator.
    """
    return _normalised_bytes(code).decode("utf-8", "surrogatepass")


def normalised_sha256(codes: Sequence[str]) -> str:
    """The exact-duplicate key of a program: sha256 of its passes' normalised code, in order."""
    if isinstance(codes, str):
        raise TypeError("normalised_sha256 takes the code of each pass, not one string; wrap it in a list")
    return hashlib.sha256(b"\x00".join(_normalised_bytes(code) for code in codes)).hexdigest()


def tokenize(code: str) -> list[str]:
    """Code tokens of ``code`` after :func:`strip_comments`, each exactly as written.

    Identifiers and keywords, numbers (``1.0`` and ``1.`` stay different tokens), multi-character
    operators (``+=``, ``<<=``, ``&&``), ``#include`` paths, and every other character on its own.
    """
    tokens = _TOKEN.findall(code)
    while tokens and not tokens[-1]:
        tokens.pop()
    return tokens


def _derived_u64(seed: int, label: str, count: int) -> np.ndarray:
    """``count`` pseudo-random uint64 values fixed by ``(seed, label)``, independent of numpy."""
    words = [
        int.from_bytes(hashlib.blake2b(f"{seed}:{label}:{i}".encode(), digest_size=8).digest(), "little")
        for i in range(count)
    ]
    return np.array(words, dtype=np.uint64)


class _TokenHashes(dict[str, int]):
    """token -> 64-bit blake2b hash, computed on first lookup (a plain lookup after that)."""

    def __missing__(self, token: str) -> int:
        digest = hashlib.blake2b(
            token.encode("utf-8", "surrogatepass"), digest_size=8, key=_TOKEN_HASH_KEY
        ).digest()
        value = self[token] = int.from_bytes(digest, "little")
        return value


class MinHasher:
    """MinHash signatures of GLSL code: ``num_perm`` uint32 minima over token shingles.

    Two signatures estimate the Jaccard similarity of their programs' shingle sets
    (:func:`estimate_jaccard`) only if they come from hashers with the same ``num_perm``,
    ``shingle_size`` and ``seed``. A program with fewer than ``shingle_size`` tokens is one
    shingle of what it has; a program without tokens gets the all-``0xFFFFFFFF`` signature.
    """

    #: Token hashes kept between chunks; common tokens (keywords, operators) stay, and the
    #: cache is emptied when it grows past this many entries.
    token_cache_limit = 100_000

    def __init__(self, num_perm: int = 128, shingle_size: int = 5, seed: int = 1) -> None:
        if num_perm < 1:
            raise ValueError(f"num_perm must be at least 1, not {num_perm}")
        if shingle_size < 1:
            raise ValueError(f"shingle_size must be at least 1, not {shingle_size}")
        self.num_perm = num_perm
        self.shingle_size = shingle_size
        self.seed = seed
        self._perm_a = (_derived_u64(seed, "perm-a", num_perm) | np.uint64(1))[:, None]
        self._perm_b = _derived_u64(seed, "perm-b", num_perm)[:, None]
        self._shingle_mult = _derived_u64(seed, "shingle", shingle_size) | np.uint64(1)
        self._token_hashes = _TokenHashes()

    def signature(self, code: str) -> np.ndarray:
        """The signature of one program's code, shape ``(num_perm,)``, dtype uint32."""
        signatures, _ = self._chunk_signatures([code])
        return signatures[0]

    def signatures(self, codes: Iterable[str]) -> np.ndarray:
        """Signatures of many programs at once, shape ``(n, num_perm)``, dtype uint32.

        Row ``i`` equals ``signature(codes[i])``; the work is done in bulk, chunk by chunk.
        """
        parts = [sigs for sigs, _ in self.iter_signatures(codes)]
        if not parts:
            return np.empty((0, self.num_perm), dtype=np.uint32)
        return np.concatenate(parts)

    def iter_signatures(
        self, codes: Iterable[str], chunk_size: int = SIGNATURE_CHUNK, workers: int = 1
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(signatures, token_counts)`` for consecutive chunks of ``codes``, in order.

        With ``workers > 1`` the chunks are signed in that many worker processes (spawned, so
        safe beside threads), at most two chunks per worker ahead of the consumer.
        """
        iterator = iter(codes)
        chunks = iter(lambda: list(itertools.islice(iterator, chunk_size)), [])
        if workers <= 1:
            for chunk in chunks:
                yield self._chunk_signatures(chunk)
            return
        context = multiprocessing.get_context("spawn")
        settings = (self.num_perm, self.shingle_size, self.seed)
        with ProcessPoolExecutor(workers, context, initializer=_start_worker, initargs=settings) as pool:
            pending: deque[Future[tuple[np.ndarray, np.ndarray]]] = deque()
            for chunk in chunks:
                pending.append(pool.submit(_worker_signatures, chunk))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def _chunk_signatures(self, codes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        token_hashes, counts = self._hash_tokens(codes)
        minima = np.full((len(codes), self.num_perm), _U64_MAX, dtype=np.uint64)
        shingles, owners = self._full_shingles(token_hashes, counts)
        self._take_minima(shingles, owners, minima)
        short = np.flatnonzero((counts > 0) & (counts < self.shingle_size))
        if short.size:
            starts = np.cumsum(counts) - counts
            short_shingles = np.array(
                [self._short_shingle(token_hashes[starts[i] : starts[i] + counts[i]]) for i in short],
                dtype=np.uint64,
            )
            minima[short] = (self._perm_a * short_shingles + self._perm_b).T
        return (minima >> np.uint64(32)).astype(np.uint32), counts

    def _hash_tokens(self, codes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Every program's token hashes, concatenated, and each program's token count.

        Program by program, so that only one program's token strings exist at a time.
        """
        cache = self._token_hashes
        if len(cache) > self.token_cache_limit:
            cache.clear()
        lookup = cache.__getitem__
        parts = []
        counts = np.empty(len(codes), dtype=np.int64)
        for i, code in enumerate(codes):
            tokens = tokenize(code)
            counts[i] = len(tokens)
            parts.append(np.fromiter(map(lookup, tokens), dtype=np.uint64, count=len(tokens)))
        token_hashes = np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)
        return token_hashes, counts

    def _full_shingles(self, token_hashes: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """32-bit hashes of every run of ``shingle_size`` tokens inside one program, and its owner."""
        k = self.shingle_size
        windows = token_hashes.size - k + 1
        if windows <= 0:
            return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)
        combined = token_hashes[:windows] * self._shingle_mult[0]
        for j in range(1, k):
            combined += token_hashes[j : j + windows] * self._shingle_mult[j]
        owner = np.repeat(np.arange(counts.size), counts)
        inside = owner[:windows] == owner[k - 1 :]
        return combined[inside] >> np.uint64(32), owner[:windows][inside]

    def _short_shingle(self, token_hashes: np.ndarray) -> np.uint64:
        combined = token_hashes * self._shingle_mult[: token_hashes.size]
        return np.bitwise_right_shift(combined.sum(dtype=np.uint64), np.uint64(32))

    def _take_minima(self, shingles: np.ndarray, owners: np.ndarray, minima: np.ndarray) -> None:
        """Fold ``min_x h_i(x)`` over each owner's shingles into ``minima[owner, i]``.

        Works in blocks of shingles laid out ``(num_perm, block)``, so that both the broadcast
        and the per-owner ``minimum.reduceat`` run over contiguous memory.
        """
        scratch = np.empty((self.num_perm, min(_BLOCK_SHINGLES, shingles.size)), dtype=np.uint64)
        for start in range(0, shingles.size, _BLOCK_SHINGLES):
            block = shingles[start : start + _BLOCK_SHINGLES]
            block_owners = owners[start : start + _BLOCK_SHINGLES]
            values = scratch[:, : block.size]
            np.multiply(self._perm_a, block, out=values)
            values += self._perm_b
            # The 32 high bits are the hash; the minimum of the full 64-bit values has the
            # minimum high bits, so the shift waits until the very end.
            segment_starts = np.flatnonzero(np.r_[True, block_owners[1:] != block_owners[:-1]])
            segment_owner = block_owners[segment_starts]
            block_minima = np.minimum.reduceat(values, segment_starts, axis=1).T
            minima[segment_owner] = np.minimum(minima[segment_owner], block_minima)


_worker_hasher: MinHasher | None = None


def _start_worker(num_perm: int, shingle_size: int, seed: int) -> None:
    global _worker_hasher
    _worker_hasher = MinHasher(num_perm=num_perm, shingle_size=shingle_size, seed=seed)


def _worker_signatures(codes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    assert _worker_hasher is not None, "the pool's initializer makes the hasher"
    return _worker_hasher._chunk_signatures(codes)


def estimate_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of two programs: the share of equal signature entries."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"signatures must be two 1-d arrays of one length, not {a.shape} and {b.shape}")
    return float(np.count_nonzero(a == b)) / a.size


@dataclass(frozen=True)
class DuplicatePair:
    """``duplicate`` is a near copy of ``original``, the earliest program of its group.

    ``similarity`` is the estimated Jaccard similarity of the two; in a chain (A~B~C, each
    confirmed pair at or above the threshold) C still points at A, and its similarity to A may be
    below the threshold.
    """

    duplicate: int
    original: int
    similarity: float


@lru_cache(maxsize=64)
def lsh_parameters(
    threshold: float, num_perm: int, false_positive_weight: float = 0.5, false_negative_weight: float = 0.5
) -> tuple[int, int]:
    """``(bands, rows)`` that minimise the weighted false-positive and false-negative areas.

    The same search as datasketch's ``MinHashLSH`` (``bands * rows <= num_perm``), with the two
    integrals done on a fixed grid by numpy rather than by scipy.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], not {threshold}")
    grid = 2_001
    below = np.linspace(0.0, threshold, grid)
    above = np.linspace(threshold, 1.0, grid)
    best = (float("inf"), (1, 1))
    for bands in range(1, num_perm + 1):
        rows = np.arange(1, num_perm // bands + 1, dtype=np.float64)[:, None]
        candidate_below = 1.0 - (1.0 - below**rows) ** bands
        candidate_above = 1.0 - (1.0 - above**rows) ** bands
        false_positive = np.trapezoid(candidate_below, below, axis=1)
        false_negative = np.trapezoid(1.0 - candidate_above, above, axis=1)
        error = false_positive * false_positive_weight + false_negative * false_negative_weight
        i = int(np.argmin(error))
        if error[i] < best[0]:
            best = (float(error[i]), (bands, i + 1))
    return best[1]


class _EarliestUnionFind:
    """Union-find over input positions whose root is always the group's smallest position."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while (up := parent.get(root, root)) != root:
            root = up
        while (up := parent.get(x, x)) != root:
            parent[x] = root
            x = up
        return root

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            low, high = min(root_a, root_b), max(root_a, root_b)
            self.parent[high] = low


def _row_keys(rows: np.ndarray, seed: int) -> np.ndarray:
    """One uint64 per row of a uint32 matrix; equal rows give equal keys (collisions are checked)."""
    multipliers = _derived_u64(seed, "rows", rows.shape[1]) | np.uint64(1)
    keys = np.zeros(rows.shape[0], dtype=np.uint64)
    for j in range(rows.shape[1]):
        keys += rows[:, j].astype(np.uint64) * multipliers[j]
        keys ^= keys >> np.uint64(29)
    return keys


def _bucket_pairs(keys: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(earlier, later)`` of positions that share a key.

    Within a bucket (members in position order) each member is paired with the next
    ``_BUCKET_WINDOW`` members, and, when the bucket is longer than that, with its first member.
    """
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    sorted_positions = positions[order]
    earlier: list[np.ndarray] = []
    later: list[np.ndarray] = []
    for distance in range(1, _BUCKET_WINDOW + 1):
        same = sorted_keys[:-distance] == sorted_keys[distance:]
        if not same.any():
            break
        earlier.append(sorted_positions[:-distance][same])
        later.append(sorted_positions[distance:][same])
    else:
        starts = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
        head = sorted_positions[np.flatnonzero(starts)][np.cumsum(starts) - 1]
        member = head != sorted_positions
        earlier.append(head[member])
        later.append(sorted_positions[member])
    if not earlier:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(earlier), np.concatenate(later)


class _Rows:
    """uint32 rows appended chunk by chunk, written in place when their number is known ahead."""

    def __init__(self, width: int, expected: int) -> None:
        # np.empty only reserves address space: rows never written cost no memory.
        self.block = np.empty((max(expected, 0), width), dtype=np.uint32)
        self.count = 0
        self.overflow: list[np.ndarray] = []

    def append(self, part: np.ndarray) -> None:
        end = self.count + part.shape[0]
        if not self.overflow and end <= self.block.shape[0]:
            self.block[self.count : end] = part
        else:
            self.overflow.append(part)
        self.count = end

    def array(self) -> np.ndarray:
        if not self.overflow:
            return self.block[: self.count]
        written = self.count - sum(part.shape[0] for part in self.overflow)
        return np.concatenate([self.block[:written], *self.overflow])


def _similarities(signatures: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    out = np.empty(left.size, dtype=np.float64)
    step = 65_536
    for start in range(0, left.size, step):
        a = signatures[left[start : start + step]]
        b = signatures[right[start : start + step]]
        out[start : start + step] = np.count_nonzero(a == b, axis=1)
    return out / signatures.shape[1]


def find_near_duplicates(
    items: Iterable[tuple[int, str]],
    *,
    threshold: float = 0.85,
    num_perm: int = 128,
    shingle_size: int = 5,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
) -> list[DuplicatePair]:
    """Near duplicates among ``items``, ``(item id, code)`` pairs sorted from earliest to latest.

    Two programs are near duplicates when the estimated Jaccard similarity of their shingle sets
    is at least ``threshold``; groups of near duplicates are closed transitively, and each member
    but the earliest (first in ``items``) is returned as a :class:`DuplicatePair` pointing at that
    earliest one, sorted by the duplicate's position in ``items``. Programs without tokens
    (empty, or only comments) are never near duplicates. ``progress``, when given, is called
    with the number of programs signed so far after each chunk. ``workers > 1`` signs chunks in
    that many spawned processes (same result; a calling script needs the usual
    ``if __name__ == "__main__":`` guard).

    Memory: the signatures (``n * num_perm * 4`` bytes, 51 MB for 100,000 programs at 128;
    twice that at the end when ``items`` cannot tell its length) and one chunk of token hashes;
    the items themselves are read once, as a stream.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], not {threshold}")
    hasher = MinHasher(num_perm=num_perm, shingle_size=shingle_size)
    ids: list[int] = []
    rows = _Rows(num_perm, expected=operator.length_hint(items, 0))
    count_parts: list[np.ndarray] = []

    def codes() -> Iterator[str]:
        for item_id, code in items:
            ids.append(item_id)
            yield code

    for part, counts in hasher.iter_signatures(codes(), workers=workers):
        rows.append(part)
        count_parts.append(counts)
        if progress is not None:
            progress(rows.count)
    if not ids:
        return []
    signatures = rows.array()
    positions = np.flatnonzero(np.concatenate(count_parts) > 0)

    groups = _EarliestUnionFind()
    # Identical signatures first: a thousand copies of one template join their earliest copy in
    # one pass, and only the earliest of each takes part in banding.
    keys = _row_keys(signatures, seed=0)[positions]
    earlier, later = _bucket_pairs(keys, positions)
    identical = np.all(signatures[earlier] == signatures[later], axis=1)
    for a, b in zip(earlier[identical].tolist(), later[identical].tolist(), strict=True):
        groups.union(a, b)
    copies = set(later[identical].tolist())
    if copies:
        positions = positions[~np.isin(positions, np.fromiter(copies, dtype=np.int64))]

    bands, band_rows = lsh_parameters(threshold, num_perm, *LSH_WEIGHTS)
    candidates: list[np.ndarray] = []
    n = len(ids)
    for band in range(bands):
        columns = slice(band * band_rows, (band + 1) * band_rows)
        keys = _row_keys(signatures[:, columns], seed=band + 1)[positions]
        earlier, later = _bucket_pairs(keys, positions)
        candidates.append(earlier.astype(np.int64) * n + later)
    pair_codes = np.unique(np.concatenate(candidates)) if candidates else np.empty(0, dtype=np.int64)
    earlier, later = np.divmod(pair_codes, n)
    confirmed = _similarities(signatures, earlier, later) >= threshold
    for a, b in zip(earlier[confirmed].tolist(), later[confirmed].tolist(), strict=True):
        groups.union(a, b)

    pairs: list[DuplicatePair] = []
    for position in sorted(groups.parent):
        original = groups.find(position)
        if original != position:
            similarity = estimate_jaccard(signatures[position], signatures[original])
            pairs.append(DuplicatePair(ids[position], ids[original], similarity))
    return pairs
