"""SipHash-2-4 of many texts at once, in numpy (the partition hash, ``pipeline.compute.partition``).

pandas' ``hash_array`` computes the same numbers, but only over Python objects: at 10M ticket keys making
the objects took ~1.5 s and hashing them ~2.4 s. Here the keys' UTF-8 bytes are read straight from their
Arrow buffer, eight at a time as little-endian words, and every step of SipHash (Aumasson & Bernstein,
2012) runs on a block of keys at once. tests/pipeline/test_compute_siphash.py checks it against the paper's
test vector and a SipHash written out from the paper, on texts of every tail length.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

#: Keys hashed at once: the four state words and a spare of a block stay in the CPU's cache.
BLOCK = 1 << 13  # measured at 10M: 2**13 0.9 s, 2**15 1.1 s, 2**18 2.2 s
_INIT = (0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573)


def siphash24(texts: pa.Array, key: bytes) -> np.ndarray:
    """SipHash-2-4 with the 16-byte ``key`` of each text's UTF-8 bytes (uint64); ``texts`` has no nulls."""
    if len(key) != 16:
        raise ValueError(f"SipHash takes a 16-byte key, not {len(key)} bytes")
    texts = texts.cast(pa.large_string())
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if texts.null_count:
        raise ValueError("cannot hash missing texts")
    offsets = np.frombuffer(texts.buffers()[1], dtype="<i8")[texts.offset:texts.offset + len(texts) + 1]
    words = _words(texts.buffers()[2], int(offsets[-1]))
    k0, k1 = (int.from_bytes(key[i:i + 8], "little") for i in (0, 8))
    out = np.empty(len(texts), dtype=np.uint64)
    for first in range(0, len(texts), BLOCK):
        starts = offsets[first:first + BLOCK + 1]
        out[first:first + len(starts) - 1] = _hashed(words, starts[:-1], np.diff(starts), k0, k1)
    return out


def _words(data: pa.Buffer | None, size: int) -> np.ndarray:
    """Every byte position's little-endian 8-byte word, as an overlapping (unaligned) uint64 view of the
    bytes followed by 8 zero bytes (a text's last word may reach past the end)."""
    padded = np.zeros(size + 8, dtype=np.uint8)
    if size:
        padded[:size] = np.frombuffer(data, dtype=np.uint8, count=size)
    return np.ndarray((size + 1,), dtype="<u8", buffer=padded, strides=(1,))


def _hashed(words: np.ndarray, starts: np.ndarray, lengths: np.ndarray, k0: int, k1: int) -> np.ndarray:
    """The hashes of one block of texts (byte ``starts`` and ``lengths`` in ``words``' bytes)."""
    v = [np.full(len(starts), k ^ init, dtype=np.uint64) for k, init in zip((k0, k1, k0, k1), _INIT, strict=True)]
    full = lengths // 8
    for block in range(int(full.max(initial=0))):
        has = full > block
        rows = slice(None) if has.all() else np.flatnonzero(has)
        state = [part[rows] for part in v]
        _compress(state, words[starts[rows] + 8 * block])
        for part, new in zip(v, state, strict=True):
            part[rows] = new
    tail = lengths % 8
    kept = (np.uint64(1) << (8 * tail).astype(np.uint64)) - np.uint64(1)  # the tail's bytes of its word
    _compress(v, (words[starts + 8 * full] & kept) | ((lengths & 0xFF).astype(np.uint64) << np.uint64(56)))
    v[2] ^= np.uint64(0xFF)
    for _ in range(4):
        _round(v)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def _compress(v: list[np.ndarray], message: np.ndarray) -> None:
    v[3] ^= message
    _round(v)
    _round(v)
    v[0] ^= message


def _round(v: list[np.ndarray]) -> None:
    """One SipRound, in place."""
    v0, v1, v2, v3 = v
    v0 += v1
    _rotl(v1, 13)
    v1 ^= v0
    _rotl(v0, 32)
    v2 += v3
    _rotl(v3, 16)
    v3 ^= v2
    v0 += v3
    _rotl(v3, 21)
    v3 ^= v0
    v2 += v1
    _rotl(v1, 17)
    v1 ^= v2
    _rotl(v2, 32)


def _rotl(x: np.ndarray, bits: int) -> None:
    """Rotate each 64-bit word left by ``bits``, in place."""
    high = x >> np.uint64(64 - bits)
    x <<= np.uint64(bits)
    x |= high
