"""Serving: Feast over the lake — what downstream teams read, and how it gets there.

- `client` — `get_signals`, the one call downstream code makes (local store or feature server);
- `similarity` — `similar`, its companion: the items most like one, from the vector index;
- `server` — `signals serve`, Feast's HTTP feature server on the configured online store;
- `store` — opening the Feast store for the settings, `feast apply`, store errors;
- `materialize` — incremental loads into the online store; `online_removal` deletes removed items;
- `training_set` — point-in-time joins over the Delta history;
- `llm_tools` — what an agentic LLM extractor may look up (served signals, nearest items);
- `errors` — this room's errors.

The only room (with `feature_repo/`) that imports Feast. Imports `features` and the lake; never
Ray, the pipeline or the CLI.

    from jobs.serving import get_signals
    table = get_signals(["track:000042"], service="playback")
"""

from jobs.serving.client import get_signals
from jobs.serving.similarity import similar

__all__ = ["get_signals", "similar"]
