"""Send a step's batches with up to `max_requests_in_flight` requests at once, settled in order.

Every sending step (users, lists, events) has the same shape: the step's own thread reads
the next batch from the warehouse (a server-side cursor) and prepares it, a small pool of
threads sends it (typing, JSON, HTTP; each request still passes the client's shared rate
limiter, and a 429 pauses every thread), and the step's thread settles the answered batches
in send order - the state of a batch is written only after the destination answered it, on
the step's own connection (never shared with the senders). So reading, encoding and waiting
overlap while the in-flight queue, and so memory, stays bounded by `width` batches.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

Batch = TypeVar("Batch")
Answer = TypeVar("Answer")


class Answered(Generic[Batch, Answer]):
    """A sent batch and its future (done: `result()` returns the answer or raises)."""

    __slots__ = ("batch", "future")

    def __init__(self, batch: Batch, future: Future[Answer]) -> None:
        self.batch = batch
        self.future = future


def send_in_order(
    batches: Iterable[Batch],
    send: Callable[[Batch], Answer],
    settle: Callable[[list[Answered[Batch, Answer]]], None],
    *,
    width: int,
    name: str,
    stopped: Callable[[], bool] = lambda: False,
) -> int:
    """Send every batch with up to `width` in flight; `settle` gets the answered ones in send order.
    Returns how many batches were sent.

    `settle` is called in this thread with the oldest batch in flight (waited for) and every
    later one already answered, so several batches can share one transaction. Once `stopped()`
    is true no further batch is read or sent; the ones in flight are still answered and settled. `batches`
    is closed (a generator's server-side cursor with it) however the loop ends.
    """
    in_flight: deque[Answered[Batch, Answer]] = deque()
    width = max(1, width)
    sent = 0

    def settle_oldest() -> None:
        answered = [in_flight.popleft()]
        answered[0].future.exception()  # waits; the result or error is settle's to read
        while in_flight and in_flight[0].future.done():
            answered.append(in_flight.popleft())
        settle(answered)

    source: Iterator[Batch] = iter(batches)
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix=name) as pool:
        try:
            done = object()
            while not stopped():  # asked before the next batch is read (and perhaps marked pending)
                batch = next(source, done)
                if batch is done:
                    break
                in_flight.append(Answered(batch, pool.submit(send, batch)))
                sent += 1
                while len(in_flight) >= width or (in_flight and in_flight[0].future.done()):
                    settle_oldest()
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()
            while in_flight:
                settle_oldest()
    return sent
