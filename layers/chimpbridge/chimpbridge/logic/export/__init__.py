"""Audience export: members of Mailchimp audiences to S3 as gzip CSV or JSON Lines, with a manifest.

The map, from the clock to the bytes::

    template.yaml  IncrementalExportSchedule / FullExportSchedule (EventBridge Scheduler)
        starts      AudienceExportStateMachine (statemachine/audience_export.asl.json) with the job
        calls       AudienceExportFunction (functions/audience_export/app.py) until the job is done
        calls       logic.export.run(job)                  here: one step, the next step's input
          audience.py   AudienceExport: lock, checkpoint, seal, manifest, commit; clean-up on abort
          session.py    one invocation's share: pages in, gzip parts out, a checkpoint per part
          paging.py     WindowPager: one window of an audience, many pages at once, each member once
          writer.py     MultipartGzipWriter: one gzip object, in parts, across invocations
          layout.py     the S3 keys, the CSV columns (Mailchimp's export layout), a member as a line
        stores in   dal/export_state.py (DynamoDB: lock, checkpoint, watermark, runs)
                    dal/export_objects.py (S3: the object, staging tails, the manifest)
        models      models/export.py (the job, the checkpoint, the manifest)

One call of :func:`run` is one step of one audience: the state machine calls again with what
it returns until ``done`` (locally, ``make invoke`` does the same). An ``abort`` job (the state
machine's catch) removes what the run in progress left. Where the run's objects go is the
export bucket; tests can give another store (``objects``).
"""

from __future__ import annotations

import uuid

from chimpbridge.dal.export_objects import ExportObjects
from chimpbridge.logic.export.audience import AudienceExport
from chimpbridge.models.export import AudienceOutcome, ExportJob


def run(job: ExportJob, objects: ExportObjects | None = None) -> ExportJob:
    """One step of the job; the result is the next step's input."""
    if job.done:
        return job
    job = _identified(job)
    audience = AudienceExport(job, job.audiences[job.position], objects)
    if job.action == "abort":
        job.results.append(audience.abort())
        job.done = True
        job.progress = None
        return job
    step = audience.step()
    if isinstance(step, AudienceOutcome):
        job.results.append(step)
        job.position += 1
        job.progress = None
        job.done = job.position >= len(job.audiences)
    else:
        job.progress = step
    return job


def _identified(job: ExportJob) -> ExportJob:
    """Fix the tick (which run this is) and the owner (who holds the lock) on first sight."""
    if job.tick is None:
        job.tick = job.scheduled_time.isoformat() if job.scheduled_time else job.execution or uuid.uuid4().hex
    if job.owner is None:
        job.owner = job.execution or uuid.uuid4().hex
    return job
