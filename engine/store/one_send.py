"""A psycopg pipeline whose statements reach PostgreSQL in one socket write.

psycopg's pipeline mode sends each statement as it is issued: a socket write per statement
(made holding the GIL), two polls around it, and a wake-up of the server's backend for each.
In the e2e run those writes were 15% of a server process's GIL time (docs/performance.md,
"Saturday evening"). The engine's pipelines (a command's queued writes with its COMMIT; a
transaction's BEGIN with its first statement) read no result before the block ends, so no
statement needs to leave early: inside `one_send` they wait in psycopg's command queue, and
when the block's Sync is queued they all go to libpq's buffer, which the Sync flushes in one
write. The order, the results and the errors are psycopg's own, read at the Sync as before.

Nothing may fetch a result inside the block: it would wait for statements not yet sent.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

# the psycopg internals this relies on (3.1 to 3.3): without them, a plain pipeline
_SUPPORTED = hasattr(psycopg.Pipeline, "_communicate_gen") and hasattr(
    psycopg.Pipeline, "_enqueue_sync"
)


@contextmanager
def one_send(driver: psycopg.Connection[Any]) -> Iterator[psycopg.Pipeline]:
    """`driver.pipeline()`, with the block's statements sent together at its end."""
    installed: psycopg.Pipeline | None = None
    try:
        with driver.pipeline() as pipeline:
            if _SUPPORTED and pipeline.level == 1 and not pipeline.command_queue:
                pipeline._communicate_gen = _at_sync_only(pipeline)  # type: ignore[method-assign]
                installed = pipeline
            yield pipeline
    finally:
        if installed is not None:
            installed.__dict__.pop("_communicate_gen", None)


def _at_sync_only(pipeline: psycopg.Pipeline) -> Any:
    communicate = type(pipeline)._communicate_gen.__get__(pipeline)
    queue = pipeline.command_queue
    sync = pipeline.pgconn.pipeline_sync

    def deferred() -> Generator[Any, Any, None]:
        # psycopg calls this after queueing each statement (to send it at once) and after
        # queueing a Sync; only then does anything leave
        if queue and queue[-1] == sync:
            while queue:
                queue.popleft()()  # into libpq's buffer; the Sync itself flushes it
            yield from communicate()  # the results, as psycopg reads them

    return deferred
