"""Connecting to Ray: a cluster when an address is configured, a local instance otherwise."""

from __future__ import annotations

import logging
import os
import warnings

import ray

from jobs.settings import Settings

# Ray ≥ 2.59 turns on token auth once a local ray.init() has written ~/.ray/auth_token; a later
# `ray start` / `ray job submit` then fails. Keep every Ray process of this project consistent.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def ensure_ray(settings: Settings) -> dict[str, float]:
    """Start or join Ray once per process and return the cluster's resources.

    Resources are explicit on a local instance: auto-detection makes small machines flaky.
    """
    quiet_ray_data_console()
    # Feast's Ray initializer (the Ray materialization and training-set engines, maybe earlier in
    # this process) switches Ray Data to a sort shuffle, which the plan's keyed repartition refuses.
    context = ray.data.DataContext.get_current()
    context.shuffle_strategy = ray.data.DataContext().shuffle_strategy
    if not ray.is_initialized():
        env = {"env_vars": {"RAY_AUTH_MODE": os.environ["RAY_AUTH_MODE"], "HF_HUB_OFFLINE": "1"}}
        if settings.ray_address:
            ray.init(
                address=settings.ray_address,
                runtime_env=env,
                logging_level=logging.WARNING,
                log_to_driver=True,
            )
        else:
            ray.init(
                num_cpus=settings.ray_num_cpus or os.cpu_count() or 1,
                object_store_memory=settings.ray_object_store_mb * 1024**2
                if settings.ray_object_store_mb
                else None,
                include_dashboard=False,
                runtime_env=env,
                logging_level=logging.WARNING,
            )
    return ray.cluster_resources()


def declarations_remote_args() -> dict[str, object]:
    """Ray remote arguments that carry `SIGNALS_DECLARATIONS` (a team's own declaration files)
    to a job's tasks and actors, which look signals up by name: none when it is not set."""
    from features.registry import DECLARATIONS_ENV

    value = os.environ.get(DECLARATIONS_ENV)
    return {"runtime_env": {"env_vars": {DECLARATIONS_ENV: value}}} if value else {}


def quiet_ray_data_console() -> None:
    """Keep Ray Data's INFO chatter (plans, estimates) in its session log file, off the terminal.

    The CLI shows its own progress; warnings and errors still reach the console.
    """
    import ray.data  # noqa: F401  (configures the "ray.data" logger on import)

    for handler in logging.getLogger("ray.data").handlers:
        if not isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\..*")


def cluster_gpus() -> int:
    """How many GPUs the connected cluster offers; extractor actors ask for one each when > 0."""
    return int(ray.cluster_resources().get("GPU", 0))
