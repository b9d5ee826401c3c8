"""Compiled kernel of :func:`fluxcore.learners.lazytree.lazy_tree_predict` (Numba).

The same tree as the NumPy implementation in :mod:`fluxcore.learners.lazytree`, node for node
and draw for draw (tested): a node is a segment of a ``(p, n)`` array holding its rows in each
feature's increasing order; a split partitions every feature's segment stably into the
children's, and only children that hold test rows are visited. The NumPy version builds a new
``(p, n)`` array per node and evaluates every split candidate as arrays; here a node is
scanned in place, in one pass per drawn feature, without the Python overhead per node.

Numba (https://numba.pydata.org, Lam, Pitrou and Seibert 2015, doi:10.1145/2833157.2833162)
compiles the kernel on first use; ``cache=True`` keeps the machine code next to this file
(or under ``NUMBA_CACHE_DIR``) for later processes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_THRESHOLD = 1e-7  # as lazytree.FEATURE_THRESHOLD; float32 values compared in float64, as scikit-learn


@njit(cache=True, nogil=True)
def _permute(state, perm):
    """Fisher-Yates shuffle of ``perm`` in place by splitmix64 (Steele, Lea and Flood 2014,
    doi:10.1145/2714064.2660195) from ``state[0]``, which it advances (see
    :func:`fluxcore.learners.lazytree.splitmix_permutation`)."""
    s = state[0]
    for i in range(perm.shape[0] - 1, 0, -1):
        s = s + _GOLDEN
        z = s
        z = (z ^ (z >> _S30)) * _MIX1
        z = (z ^ (z >> _S27)) * _MIX2
        z = z ^ (z >> _S31)
        j = np.int64(z % np.uint64(i + 1))
        perm[i], perm[j] = perm[j], perm[i]
    state[0] = s


@njit(cache=True, nogil=True)
def _sort_segment(key, seg, s, e, buf, cnt):
    """Sort ``seg[s:e]`` (row numbers) by ``key[row]`` (uint32), stably: a least-significant-digit
    radix sort, three passes of 11 bits (a pass whose digit is one value is skipped), or an
    insertion sort for short segments."""
    n = e - s
    if n <= 48:
        for a in range(s + 1, e):
            r = seg[a]
            kr = key[r]
            b = a - 1
            while b >= s and key[seg[b]] > kr:
                seg[b + 1] = seg[b]
                b -= 1
            seg[b + 1] = r
        return
    for shift in (0, 11, 22):
        cnt[:] = 0
        for a in range(s, e):
            cnt[(key[seg[a]] >> shift) & 0x7FF] += 1
        if cnt.max() == n:
            continue
        acc = 0
        for d in range(2048):
            c = cnt[d]
            cnt[d] = acc
            acc += c
        for a in range(s, e):
            r = seg[a]
            d = (key[r] >> shift) & 0x7FF
            buf[cnt[d]] = r
            cnt[d] += 1
        for a in range(n):
            seg[s + a] = buf[a]


@njit(cache=True, nogil=True)
def _partition(seg, s, e, left, buf):
    """Stable partition of ``seg[s:e]``: rows marked in ``left`` first. Returns their number.

    Branch-free (each row is written to both places, the counters say which copy counts): the
    sides of a split are not predictable, and mispredicted branches cost more than the writes.
    """
    nl, nr = 0, 0
    for a in range(s, e):
        r = seg[a]
        go = np.int64(left[r])
        seg[s + nl] = r
        buf[nr] = r
        nl += go
        nr += 1 - go
    for a in range(nr):
        seg[s + nl + a] = buf[a]
    return nl


@njit(cache=True, nogil=True)
def gather_sample(X, miss, mu, pick):
    """The sample ``X[pick]`` with missing values replaced by ``mu``, transposed (p, n), -0.0 as
    0.0, and its uint32 order keys (as :func:`fluxcore.learners.lazytree._order_keys`)."""
    n, p = pick.shape[0], X.shape[1]
    xT = np.empty((p, n), dtype=np.float32)
    key = np.empty((p, n), dtype=np.uint32)
    for a in range(n):
        r = pick[a]
        for f in range(p):
            v = mu[f] if miss[r, f] else X[r, f]
            v = v + np.float32(0.0)
            xT[f, a] = v
    bits = xT.view(np.uint32)
    for f in range(p):
        for a in range(n):
            u = bits[f, a]
            key[f, a] = ~u if u >> np.uint32(31) else u | np.uint32(0x80000000)
    return xT, key


@njit(cache=True, nogil=True)
def grow_lazy(xT, key, y, xtT, msl, k, max_depth, seed):  # noqa: C901 (one kernel, kept whole)
    """Predictions of the test rows ``xtT`` (p, m) by the lazy tree on ``xT`` (p, n), ``y`` (n, t).

    ``key`` (p, n): uint32 keys that order like ``xT`` (:func:`fluxcore.learners.lazytree.
    _order_keys`); ``msl``: least rows in a leaf; ``k``: features drawn per node;
    ``max_depth`` < 0: unlimited; ``seed``: uint64 of the draws. Returns (m, t).

    A node's rows are held once in increasing row order (``base``) and, for each feature a
    node has drawn, in that feature's order (``srt``): a feature is sorted the first time a
    node draws it (stable, so ties keep the row order) and only sorted features are
    partitioned at each split.
    """
    p, n = xT.shape
    t = y.shape[1]
    m = xtT.shape[1]
    out = np.empty((m, t))
    base = np.arange(n).astype(np.int32)
    srt = np.empty((p, n), dtype=np.int32)
    buf = np.empty(n, dtype=np.int32)
    cnt = np.zeros(2048, dtype=np.int64)
    left = np.zeros(n, dtype=np.bool_)
    te = np.arange(m)
    tbuf = np.empty(m, dtype=te.dtype)
    cap = n // max(msl, 1) + 3
    st = np.empty((cap, 5), dtype=np.int64)  # start, end, test start, test end, depth
    cst = np.zeros((cap, p), dtype=np.bool_)  # features known constant in the node
    dst = np.zeros((cap, p), dtype=np.bool_)  # features sorted in the node
    state = np.empty(1, dtype=np.uint64)
    state[0] = seed
    perm = np.empty(p, dtype=np.int64)
    const = np.zeros(p, dtype=np.bool_)
    done = np.zeros(p, dtype=np.bool_)
    cl = np.empty(t)
    tot = np.empty(t)
    mean = np.empty(t)
    st[0, 0], st[0, 1], st[0, 2], st[0, 3], st[0, 4] = 0, n, 0, m, 0
    top = 1
    while top > 0:
        top -= 1
        s, e, ts, tend, depth = st[top, 0], st[top, 1], st[top, 2], st[top, 3], st[top, 4]
        const[:] = cst[top]
        done[:] = dst[top]
        nn = e - s
        leaf = nn < 2 * msl or (max_depth >= 0 and depth >= max_depth)
        if not leaf:
            leaf = True
            for j in range(t):
                lo = hi = y[base[s], j]
                for a in range(s + 1, e):
                    v = y[base[a], j]
                    lo = min(lo, v)
                    hi = max(hi, v)
                if hi > lo:
                    leaf = False
                    break
        best_f, best_i, best_gain = -1, -1, -np.inf
        if not leaf:
            for f in range(p):
                perm[f] = f
            _permute(state, perm)
            drawn = 0
            found = False
            while drawn < p and not found:
                stop = k if drawn == 0 else drawn + 1
                while drawn < min(stop, p):
                    f = perm[drawn]
                    drawn += 1
                    if const[f]:
                        continue
                    row = srt[f]
                    if not done[f]:  # first draw of f on this path: sort the node's rows
                        for a in range(s, e):
                            row[a] = base[a]
                        _sort_segment(key[f], row, s, e, buf, cnt)
                        done[f] = True
                    if not np.float64(xT[f, row[e - 1]]) > np.float64(xT[f, row[s]]) + _THRESHOLD:
                        const[f] = True  # constant here, so in every descendant
                        continue
                    found = True
                    # the node's target sums in this feature's order (as a running sum, so
                    # that every rounding equals the NumPy version's cumulative sum), then every
                    # admissible cut in one pass
                    for j in range(t):
                        tot[j] = 0.0
                        cl[j] = 0.0
                    for a in range(s, e):
                        r = row[a]
                        for j in range(t):
                            tot[j] += y[r, j]
                    xf = xT[f]
                    v0 = np.float64(xf[row[s]])
                    for i in range(nn - msl):
                        r = row[s + i]
                        for j in range(t):
                            cl[j] += y[r, j]
                        v1 = np.float64(xf[row[s + i + 1]])
                        if i >= msl - 1 and v1 > v0 + _THRESHOLD:
                            nl = np.float64(i + 1)
                            nr = nn - nl
                            g = 0.0
                            for j in range(t):
                                d = tot[j] - cl[j]
                                g += cl[j] * cl[j] / nl + d * d / nr
                            if g > best_gain:
                                best_gain, best_f, best_i = g, f, i
                        v0 = v1
        if best_f < 0:  # a leaf: the mean training target of the node
            for j in range(t):
                acc = 0.0
                for a in range(s, e):
                    acc += y[base[a], j]
                mean[j] = acc / nn
            for a in range(ts, tend):
                for j in range(t):
                    out[te[a], j] = mean[j]
            continue
        row = srt[best_f]
        xa = np.float64(xT[best_f, row[s + best_i]])
        xb = np.float64(xT[best_f, row[s + best_i + 1]])
        thr = xa / 2.0 + xb / 2.0
        if thr == xb or not np.isfinite(thr):
            thr = xa
        # test rows: left ones first (order kept)
        nlt = 0
        for a in range(ts, tend):
            if np.float64(xtT[best_f, te[a]]) <= thr:
                te[ts + nlt] = te[a]
                nlt += 1
            else:
                tbuf[a - ts - nlt] = te[a]
        for a in range(tend - ts - nlt):
            te[ts + nlt + a] = tbuf[a]
        # training rows: the first best_i + 1 in the chosen feature's order go left; the row
        # set and every sorted feature's segment are split stably, so each stays in order
        nleft = best_i + 1
        for a in range(s, s + nleft):
            left[row[a]] = True
        _partition(base, s, e, left, buf)
        for f in range(p):  # the chosen feature's rows are already split: its left rows come first
            if done[f] and f != best_f:
                _partition(srt[f], s, e, left, buf)
        for a in range(s, s + nleft):
            left[base[a]] = False
        # push right then left: the left child is grown first, as in the NumPy version
        if tend > ts + nlt:
            st[top, 0], st[top, 1], st[top, 2], st[top, 3], st[top, 4] = s + nleft, e, ts + nlt, tend, depth + 1
            cst[top] = const
            dst[top] = done
            top += 1
        if nlt > 0:
            st[top, 0], st[top, 1], st[top, 2], st[top, 3], st[top, 4] = s, s + nleft, ts, ts + nlt, depth + 1
            cst[top] = const
            dst[top] = done
            top += 1
    return out
