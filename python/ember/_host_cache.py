"""Host storage for large CPU tensors, kept and reused instead of freed.

NumPy gives every allocation of 4 MiB or more an madvise(MADV_HUGEPAGE) call, and a
block that glibc recycles from its heap gets that call again each time while its pages
stay small: on this machine a fresh 4 MiB output costs ~45 us more to fill than a reused
one (a 1M-float relu takes ~170 us). Blocks here are allocated once (huge pages where the
kernel gives them), and one is free again when no array refers to it any more: only
the cache's list holds it (its reference count says so; no hook on array deletion).

Requests under MIN_BYTES or over MAX_BLOCK go to NumPy as before; at most MAX_FREE bytes
of free blocks are kept (the rest is released when a new block is made). empty_cache()
releases every free block."""
import sys
import threading

import numpy as np

MIN_BYTES = 1 << 20
MAX_BLOCK = 1 << 28  # 256 MiB
MAX_FREE = 1 << 28
_GRANULE = 1 << 16  # sizes round up to 64 KiB, so near-equal shapes share blocks

_blocks = {}  # rounded size -> [uint8 ndarray]
_ids = set()  # id() of every block in _blocks
_lock = threading.Lock()


def _refs_when_free():
    """sys.getrefcount of a block only the cache holds, seen from a loop over its list the
    way empty() and _free_blocks() look (interpreters differ in what a loop variable holds)."""
    probe = [np.empty(0)]
    for b in probe:
        return sys.getrefcount(b)


def _refs_when_exclusive():
    """sys.getrefcount of a block that the cache and exactly one array hold, seen as
    owns_storage() sees it."""
    block = np.empty(8)
    held = [block]
    arr = block[:4]
    del block
    b = arr.base
    assert held
    return sys.getrefcount(b)


_FREE_REFS = _refs_when_free()
_EXCLUSIVE_REFS = _refs_when_exclusive()


def empty(shape, dtype):
    """An uninitialized C-contiguous ndarray of shape and (NumPy) dtype."""
    dtype = np.dtype(dtype)
    n = dtype.itemsize
    for s in shape:
        n *= s
    if n < MIN_BYTES or n > MAX_BLOCK:
        return np.empty(shape, dtype)
    size = -(-n // _GRANULE) * _GRANULE
    with _lock:
        blocks = _blocks.setdefault(size, [])
        for b in blocks:
            if sys.getrefcount(b) <= _FREE_REFS:
                return b[:n].view(dtype).reshape(shape)
        _release_free(size)
        b = np.empty(size, np.uint8)
        blocks.append(b)
        _ids.add(id(b))
        return b[:n].view(dtype).reshape(shape)


def owns_storage(arr):
    """True if no other live array shares arr's memory: arr owns it (NumPy's), or arr is
    the only array over its cache block."""
    b = arr.base
    if b is None:
        return True
    if id(b) not in _ids:
        return False
    return sys.getrefcount(b) <= _EXCLUSIVE_REFS


def _drop(size, b):
    _blocks[size] = [x for x in _blocks[size] if x is not b]
    _ids.discard(id(b))


def _free_blocks():
    free = []
    for size, blocks in _blocks.items():
        for b in blocks:
            if sys.getrefcount(b) <= _FREE_REFS:
                free.append((size, b))
    return free


def _release_free(keep_size):
    """Drop free blocks (other sizes first) while more than MAX_FREE bytes are free."""
    free = sorted(_free_blocks(), key=lambda sb: sb[0] == keep_size)
    total = sum(size for size, _ in free)
    for size, b in free:
        if total <= MAX_FREE:
            break
        _drop(size, b)
        total -= size


def empty_cache():
    """Release every block no tensor uses."""
    with _lock:
        for size, b in _free_blocks():
            _drop(size, b)


def cached_bytes():
    """(bytes held in blocks, bytes of them free)."""
    with _lock:
        held = sum(size * len(blocks) for size, blocks in _blocks.items())
        return held, sum(size for size, _ in _free_blocks())
