"""Bulk import of residents and members from CSV or XLSX (DESIGN.md "Onboarding").

Design overview
---------------
* **Who**: an admin for any community, a secretary for their own (``import.create``);
  only the one who started a job reads it (``import.view``). The command line
  (``flask import residents FILE --community ID``) acts as the system.
* **Reading** (``files``): UTF-8 with or without BOM, GB18030, XLSX; the header names
  each column in Chinese or English; rows are numbered from 1 after the header.
* **Checking** (``checking``): every row at upload time, each error with row and field
  (name, phone format, grid of the community, known household tags, a phone number on
  an earlier row, a number that belongs to someone the importer may not change). A
  dry run stops here: it stores the job with the counts it would have and writes no
  person.
* **Writing** (``running``): chunks of :data:`CHUNK` rows, each in its own transaction
  that also advances the job's progress, so the page shows rows done / total and a
  runner that dies is replaced without writing a row twice. Matching is on the phone
  number: an existing person of the community is updated (never duplicated), a new one
  is created without a password (``UNUSABLE_PASSWORD``) and given the role (resident or
  member) on their grid, or the community when no grid is named.
* **Who runs it**: the edge (``http/imports.py``) starts a thread after the upload's
  commit; ``flask import run-pending`` takes over pending jobs and running ones whose
  heartbeat is older than :data:`STALE_AFTER` (after a restart). Claiming a job is a
  conditional UPDATE, so two runners never write the same job.
"""

from __future__ import annotations

from .checking import HOUSEHOLD_TAGS, check_rows
from .files import COLUMNS, XLSX_MIME, read_sheet, template
from .running import CHUNK, STALE_AFTER, claim, claimable, fail, get_job, start, write_chunk

__all__ = [
    "CHUNK",
    "COLUMNS",
    "HOUSEHOLD_TAGS",
    "STALE_AFTER",
    "XLSX_MIME",
    "check_rows",
    "claim",
    "claimable",
    "fail",
    "get_job",
    "read_sheet",
    "start",
    "template",
    "write_chunk",
]
