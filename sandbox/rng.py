"""Stable randomness: every random choice is derived from a digest of (seed, key), never from hash().

Python's ``hash()`` of a str changes with PYTHONHASHSEED and the machine's clock never enters here, so the
synthetic organisation is identical on every machine and in every process for the same arguments.
"""

from __future__ import annotations

import hashlib
import random

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _key_bytes(seed: int, key: tuple[object, ...]) -> bytes:
    # str() of ints, strs and dates is stable across processes and platforms; "\x1f" separates parts.
    return "\x1f".join([str(seed), *(str(k) for k in key)]).encode("utf-8")


def digest(seed: int, *key: object, size: int = 32) -> bytes:
    """A blake2b digest of (seed, key...): the root of every stable random value."""
    return hashlib.blake2b(_key_bytes(seed, key), digest_size=size).digest()


def stable_int(seed: int, *key: object, bits: int = 64) -> int:
    """A non-negative integer of `bits` bits derived from (seed, key...)."""
    size = (bits + 7) // 8
    return int.from_bytes(digest(seed, *key, size=size), "big") >> (size * 8 - bits)


def stable_rng(seed: int, *key: object) -> random.Random:
    """A `random.Random` seeded from (seed, key...), independent of PYTHONHASHSEED and time."""
    return random.Random(stable_int(seed, *key, bits=128))


def stable_unit(seed: int, *key: object) -> float:
    """A float in [0, 1) derived from (seed, key...)."""
    return stable_int(seed, *key, bits=53) / float(1 << 53)


def stable_token(seed: int, *key: object, length: int = 22, alphabet: str = BASE62) -> str:
    """A token of `length` characters of `alphabet`, e.g. the tail of a vendor id like ``apikey_01…``."""
    n = int.from_bytes(digest(seed, *key, size=32), "big")
    base = len(alphabet)
    chars = []
    for _ in range(length):
        n, r = divmod(n, base)
        chars.append(alphabet[r])
    return "".join(chars)


def stable_id(seed: int, prefix: str, *key: object, length: int = 22) -> str:
    """A vendor-looking id: ``<prefix>_01<token>`` (Anthropic style, e.g. ``apikey_01Rj2N8S…``)."""
    return f"{prefix}_01{stable_token(seed, prefix, *key, length=length)}"
