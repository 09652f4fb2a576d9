"""Python's cyclic garbage collector, set for a long-running service process.

Now and then the collector looks at every object the process holds. A process with the engine
loaded holds millions (modules, SQLAlchemy's caches, deployed specs), so such a full
collection took 50-65 ms, once every 1,500 or so task commands: it was the p99 of a worklist
read at 1M cases (48-68 ms with the collector as it is, 10-12 ms with it off;
docs/performance.md, "Sunday night").

What start-up made lives as long as the process: `gc.freeze()` moves it where the collector
never looks, and full collections become rare and short. The young collections stay as they
are (0.1-0.2 ms each); raising their threshold saved nothing worth their longer pauses.
"""

from __future__ import annotations

import gc


def tune_for_service() -> None:
    """Call once start-up is done, in each process that serves. Objects made before it are
    never collected: start-up must not leave garbage in reference cycles behind, which the
    `gc.collect()` here clears first."""
    gc.collect()
    gc.freeze()
