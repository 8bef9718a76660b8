"""Races on purpose: many threads released together against one store, their outcomes collected."""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def at_once(count: int, call: Callable[[int], T], timeout: float = 60) -> list[T | BaseException]:
    """``count`` threads released together by a barrier, each running ``call(index)``.

    Returns, in thread order, what each returned or the exception it raised: a refused claim or
    an over-quota create is an outcome the test counts, not a crash. Fails if a thread is still
    running after ``timeout`` seconds (a hung compare-and-set loop is a bug, not a slow test).
    """
    barrier = threading.Barrier(count)
    outcomes: list[T | BaseException | None] = [None] * count

    def one(index: int) -> None:
        barrier.wait()
        try:
            outcomes[index] = call(index)
        except BaseException as exc:  # noqa: BLE001 - the caller classifies it
            outcomes[index] = exc

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    stuck = sum(thread.is_alive() for thread in threads)
    assert stuck == 0, f"{stuck} of {count} threads still running after {timeout} s"
    return outcomes  # type: ignore[return-value] - every slot is filled once no thread is alive


def raised(outcomes: list[object]) -> list[BaseException]:
    """The outcomes that are exceptions."""
    return [o for o in outcomes if isinstance(o, BaseException)]
