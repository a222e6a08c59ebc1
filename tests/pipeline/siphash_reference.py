"""SipHash-2-4 written out from its paper (Aumasson & Bernstein, 2012), one text at a time in Python, and the
documented partition hash of a ticket key: what the engine's hashes are checked against."""

from __future__ import annotations

from pipeline.compute.partition import PARTITION_HASH_KEY

MASK = (1 << 64) - 1


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & MASK


def _round(v: list[int]) -> None:
    v[0] = (v[0] + v[1]) & MASK; v[1] = _rotl(v[1], 13); v[1] ^= v[0]; v[0] = _rotl(v[0], 32)  # noqa: E702
    v[2] = (v[2] + v[3]) & MASK; v[3] = _rotl(v[3], 16); v[3] ^= v[2]  # noqa: E702
    v[0] = (v[0] + v[3]) & MASK; v[3] = _rotl(v[3], 21); v[3] ^= v[0]  # noqa: E702
    v[2] = (v[2] + v[1]) & MASK; v[1] = _rotl(v[1], 17); v[1] ^= v[2]; v[2] = _rotl(v[2], 32)  # noqa: E702


def siphash24(key: bytes, data: bytes) -> int:
    """SipHash-2-4 of ``data`` with a 16-byte ``key``, as the paper defines it."""
    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little")
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D, k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]
    tail = len(data) % 8
    blocks = [int.from_bytes(data[i:i + 8], "little") for i in range(0, len(data) - tail, 8)]
    blocks.append(((len(data) & 0xFF) << 56) | int.from_bytes(data[len(data) - tail:], "little"))
    for m in blocks:
        v[3] ^= m
        _round(v)
        _round(v)
        v[0] ^= m
    v[2] ^= 0xFF
    for _ in range(4):
        _round(v)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def mixed(h: int) -> int:
    """The 64-bit finaliser pandas applies after SipHash (splitmix64's: xor-shift, multiply, twice)."""
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & MASK
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & MASK
    return h ^ (h >> 31)


def key_hash(source: str, ticket_id: str) -> int:
    """The documented partition hash of one ticket key, written out."""
    return mixed(siphash24(PARTITION_HASH_KEY.encode(), f"{source}\x1f{ticket_id}".encode()))
