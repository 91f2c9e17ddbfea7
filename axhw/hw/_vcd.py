"""One compiled pass over a VCD body: per-bit transitions and time at 1 in several time windows.

Kept apart from :mod:`axhw.hw.power` so that numba is imported only when activity is
counted.  The kernel follows the line-by-line reference ``power._VcdCounter``
exactly (tested against it): changes are applied per time step (the last change of a
net within a step wins), a transition between two of 0/1 counts in the window whose
``[start, end)`` holds its step, and time at 1 is the overlap of each net's high
intervals with each window.  x and z are one state: neither counts as a transition
nor as time at 1, so telling them apart would change no number.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["count_windows"]


@numba.njit(cache=True)
def _window_of(starts: np.ndarray, ends: np.ndarray, t: int) -> int:
    """Index of the window holding time ``t``, or -1."""
    k = np.searchsorted(starts, t, side="right") - 1
    if k >= 0 and t < ends[k]:
        return k
    return -1


@numba.njit(cache=True)
def _add_high(high: np.ndarray, starts: np.ndarray, ends: np.ndarray, bit: int, s: int, e: int) -> None:
    """Add the overlap of the high interval ``[s, e)`` with every window to ``high[:, bit]``."""
    k = np.searchsorted(ends, s, side="right")
    while k < len(starts) and starts[k] < e:
        lo = max(s, starts[k])
        hi = min(e, ends[k])
        if hi > lo:
            high[k, bit] += hi - lo
        k += 1


@numba.njit(cache=True)
def _commit(t, n_pending, pending, pending_val, value, since, toggles, high, starts, ends):
    k = _window_of(starts, ends, t)
    for p in range(n_pending):
        bit = pending[p]
        new = pending_val[bit]
        old = value[bit]
        if new != old:
            if old == 1:
                _add_high(high, starts, ends, bit, since[bit], t)
            if k >= 0 and old != 2 and new != 2:
                toggles[k, bit] += 1
            since[bit] = t
            value[bit] = new


@numba.njit(cache=True)
def _level(c: int) -> int:
    return 0 if c == 48 else (1 if c == 49 else 2)  # "0", "1", anything else (x, z)


@numba.njit(cache=True, nogil=True)  # runs of one batch are counted in threads
def count_windows(buf: np.ndarray, keys: np.ndarray, bases: np.ndarray, widths: np.ndarray, n_bits: int,
                  starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Transitions and time at 1 (ticks) per window and bit of the VCD body ``buf``.

    Args:
        buf: the bytes after ``$enddefinitions``, as uint8.
        keys: sorted identifier-code keys (:func:`code_key`); ``bases``/``widths``: each
            key's first bit index and width (bits MSB first).
        n_bits: number of bits.
        starts, ends: sorted, disjoint windows ``[start, end)`` in ticks.

    Returns:
        (toggles, high, bad): int64 arrays of shape (windows, bits), and the byte offset
        of the first change of an undeclared code (-1 when none).
    """
    n_windows = len(starts)
    toggles = np.zeros((n_windows, n_bits), dtype=np.int64)
    high = np.zeros((n_windows, n_bits), dtype=np.int64)
    value = np.full(n_bits, 2, dtype=np.int8)
    since = np.zeros(n_bits, dtype=np.int64)
    pending_val = np.full(n_bits, 2, dtype=np.int8)
    pending_step = np.full(n_bits, -1, dtype=np.int64)
    pending = np.zeros(n_bits, dtype=np.int64)
    n_pending = 0
    step = 0
    t = 0
    i = 0
    n = len(buf)
    while i < n:
        c = buf[i]
        if c == 10 or c == 13 or c == 32 or c == 9:
            i += 1
            continue
        line = i
        while i < n and buf[i] != 10:
            i += 1
        end = i  # the line is buf[line:end]
        while end > line and (buf[end - 1] == 32 or buf[end - 1] == 13 or buf[end - 1] == 9):
            end -= 1
        if c == 35:  # "#<time>"
            _commit(t, n_pending, pending, pending_val, value, since, toggles, high, starts, ends)
            n_pending = 0
            step += 1
            t = 0
            for j in range(line + 1, end):
                t = t * 10 + (buf[j] - 48)
            continue
        if c == 98 or c == 66:  # "b<value> <code>"
            v0 = line + 1
            v1 = v0
            while v1 < end and buf[v1] != 32:
                v1 += 1
            c0 = v1
            while c0 < end and buf[c0] == 32:
                c0 += 1
        elif c == 48 or c == 49 or c == 120 or c == 122 or c == 88 or c == 90:  # "<0|1|x|z><code>"
            v0 = line
            v1 = line + 1
            c0 = line + 1
        else:  # $dumpvars, $end, comments, real values: no activity
            continue
        key = 0
        for j in range(c0, end):
            key = key * 96 + (buf[j] - 32)
        s = np.searchsorted(keys, key)
        if s >= len(keys) or keys[s] != key:
            return toggles, high, line
        width = widths[s]
        base = bases[s]
        length = v1 - v0
        lead = buf[v0]
        pad = 2 if (lead == 120 or lead == 122 or lead == 88 or lead == 90) else 0
        for b in range(width):
            pos = length - width + b
            level = _level(buf[v0 + pos]) if pos >= 0 else pad
            bit = base + b
            pending_val[bit] = level
            if pending_step[bit] != step:
                pending_step[bit] = step
                pending[n_pending] = bit
                n_pending += 1
    _commit(t, n_pending, pending, pending_val, value, since, toggles, high, starts, ends)
    for bit in range(n_bits):
        if value[bit] == 1:
            _add_high(high, starts, ends, bit, since[bit], ends[n_windows - 1] if n_windows else 0)
    return toggles, high, -1


def code_key(code: str) -> int:
    """An identifier code (printable ASCII) as one integer, distinct for distinct codes."""
    key = 0
    for ch in code.encode():
        key = key * 96 + (ch - 32)
    return key
