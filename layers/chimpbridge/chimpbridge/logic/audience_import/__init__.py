"""Audience import: a file dropped under ``imports/<audience id>/`` in the bundle's bucket is
applied to that audience, every row exactly once, with a report (docs/audience-import.md).

An "Object Created" event starts the import state machine, which calls the function with the
job until it says ``done`` (locally, ``make invoke`` does the same). The map:

- :mod:`.step` (:func:`run`): one step of a run: lock, checkpoint, rows, report; resume and
  abort. Start here.
- :mod:`.rows`: reading the file as it streams: CSV or JSON Lines, gzip or not, numbered rows.
- :mod:`.columns`: what each column means (address, merge field by tag or name, tags,
  language, status, consent), within the field map.
- :mod:`.members`: one row to one member: the signup path's checks, then ``PUT`` with
  ``status_if_new``, tags through the tags endpoint, the row's outcome.
- :mod:`.report`: the results parts, the summary and the event.

AWS is reached through :mod:`chimpbridge.dal.import_objects` (S3) and
:mod:`chimpbridge.dal.import_state` (the state table); the event through
:mod:`chimpbridge.dal.events`.
"""

from chimpbridge.logic.audience_import.step import run

__all__ = ["run"]
