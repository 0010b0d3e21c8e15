"""`python -m jobs <command> …`: the one entry point of cluster jobs, the `signals` CLI itself.

RayJobs, RayCronJobs, the container image and `signals submit` run `python -m jobs extract …`
exactly as a laptop runs `signals extract …`: same commands, flags, output and exit codes.
"""

from jobs.cli import app

app(prog_name="python -m jobs")
