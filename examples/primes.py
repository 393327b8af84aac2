"""Conducto's native-function demo: the primes below n, found by one node and checked by a
Parallel of nodes that each test a range by trial division.

    python primes.py                    # print the tree
    python primes.py --local            # run it here (the same as: k8sco run primes.py)
    python primes.py primes --n=100 --local
    k8sco call primes.py:seive --n=30   # what the /seive node runs
"""

from __future__ import annotations

import k8sco as co


def seive(n: int) -> list[int]:
    """The primes below n (the sieve of Eratosthenes); `k8sco call` prints them."""
    is_prime = [True] * max(n, 0)
    for i in range(2, n):
        if is_prime[i]:
            for multiple in range(i * i, n, i):
                is_prime[multiple] = False
    return [i for i in range(2, n) if is_prime[i]]


def check(lo: int, hi: int, n: int) -> None:
    """Check the sieve's answer for [lo, hi) against trial division; fail on a mismatch."""
    expected = [p for p in range(max(lo, 2), hi) if all(p % d for d in range(2, int(p**0.5) + 1))]
    got = [p for p in seive(n) if lo <= p < hi]
    if got != expected:
        raise SystemExit(f"[{lo}, {hi}): the sieve says {got}, trial division {expected}")
    print(f"[{lo}, {hi}): {len(got)} primes, ok")


def primes(n: int = 30) -> co.Serial:
    """Find the primes below n, then check them in parallel, a range per node."""
    with co.Serial() as root:
        co.Exec(seive, n).set(name="seive", cpu=0.5, mem=1)
        with co.Parallel(name="check", max_concurrent=4):
            step = max(n // 3, 1)
            for lo in range(0, n, step):
                hi = min(lo + step, n)
                co.Exec(check, lo, hi, n).set(name=f"{lo}-{hi}", cpu=0.25, mem=0.5)
        co.Exec(f"echo all primes below {n} checked", name="report")
    return root


if __name__ == "__main__":
    co.main(default=primes)
