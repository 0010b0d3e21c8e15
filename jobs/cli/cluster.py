"""`signals submit`: any batch job on a Ray cluster, named and flagged as on a laptop."""

from __future__ import annotations

from typing import Annotated

import typer

from jobs.cli.output import console, err_console, handles_errors


@handles_errors
def submit(
    job: Annotated[
        str,
        typer.Argument(
            help="The job: extract, backfill, near-duplicates, materialize, compact or vacuum."
        ),
    ],
    args: Annotated[
        list[str] | None, typer.Argument(help="The job's own arguments and flags, as on a laptop.")
    ] = None,
    address: Annotated[
        str,
        typer.Option(envvar="SIGNALS_SUBMIT_ADDRESS", help="The cluster's Ray dashboard."),
    ] = "http://127.0.0.1:8265",
    upload: Annotated[
        bool,
        typer.Option(help="Upload this checkout as the job's code (--no-upload: the image's)."),
    ] = True,
    env: Annotated[
        list[str] | None,
        typer.Option(help="KEY=VALUE for the job's environment (repeatable); no credentials."),
    ] = None,
    forward_settings: Annotated[
        bool,
        typer.Option(help="Pass this shell's SIGNALS_* settings, less credentials, to the job."),
    ] = True,
    wait: Annotated[bool, typer.Option(help="Stream the logs until the job ends.")] = True,
) -> None:
    """Run a job on a Ray cluster (Ray's job submission API), stream its logs, exit as it did.

    `signals submit extract text_embedding@2 --gpus-per-actor 1 --actors 2:8` runs
    `python -m jobs extract text_embedding@2 --gpus-per-actor 1 --actors 2:8` on the cluster.
    Credentials never travel with the job (Ray shows its environment to every reader of the
    job info): the cluster supplies its own, from a Secret or its nodes' role.
    """
    from jobs.pipeline.submit import job_env
    from jobs.pipeline.submit import submit as submit_job

    environment = job_env(env or [], forward=forward_settings)
    if environment.notice:
        err_console.print(environment.notice, markup=False, highlight=False)
    outcome = submit_job(
        address,
        job,
        args or [],
        env=environment.env,
        upload=upload,
        wait=wait,
        on_log=lambda line: console.print(line, markup=False, highlight=False),
    )
    if wait:
        style = "green" if outcome.exit_code == 0 else "bold red"
        err_console.print(f"[{style}]{job}: Ray job {outcome.job_id} {outcome.status}[/] "
                          f"{outcome.message}", highlight=False)  # fmt: skip
    raise typer.Exit(outcome.exit_code)
