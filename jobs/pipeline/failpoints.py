"""Named points at which a job can be made to die, so that tests prove it is crash-safe.

`SIGNALS_FAILPOINTS=before-commit python -m jobs extract ...` kills the process with SIGKILL — no
`finally`, no atexit, exactly like the kernel's OOM killer or a lost node — when it reaches that
point. Unset (always, outside tests) a failpoint costs one environment lookup.
"""

from __future__ import annotations

import os
import signal

FAILPOINTS_ENV = "SIGNALS_FAILPOINTS"

# Where the extract job's driver can be killed, in the order it passes them.
BEFORE_COMMIT = "before-commit"  # every part written, nothing committed
BETWEEN_COMMITS = "between-commits"  # the quarantine table committed, the signal table not
BEFORE_RUN_RECORD = "before-run-record"  # both tables committed, the run not yet recorded


def failpoint(name: str) -> None:
    """Die here (SIGKILL) when `name` is listed in $SIGNALS_FAILPOINTS."""
    if name in os.environ.get(FAILPOINTS_ENV, "").split(","):
        os.kill(os.getpid(), signal.SIGKILL)
