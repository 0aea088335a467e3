"""Sessions and attendance (DESIGN.md "Sessions and attendance"; docs/sessions.md).

Design overview
---------------
* A session is one dated occurrence of an approved project: time, place, slots. Its
  owner schedules it; whoever may see the project sees its sessions and their counts.
* Members of the project's community sign up: a free place (``signed_up``) or the end of
  the waitlist (``waitlisted``). Cancelling a place (before the start) hands it to the
  first waitlisted member, who is notified. Every change of a session's places runs
  under the session's row lock (:func:`lock_session`: ``SELECT ... FOR UPDATE`` on
  PostgreSQL, the ``BEGIN IMMEDIATE`` write transaction on SQLite); the place is taken by
  a conditional UPDATE of ``signed_up_count`` and the database refuses more than
  ``slots`` (CHECK) and a second row per member (UNIQUE).
* Attendance: a member with a place checks in and out with the rotating check-in code
  shown at the venue, or the owner marks them present (``user_id``) after the fact.
* The delivery is made from the attendance through ``record_delivery``, so every rule of
  a delivery holds; participants' minutes come from check-in/out, no-shows are members
  with a place who never came; one delivery per session.
* Calendars: ``GET /api/v1/me/calendar.ics`` and a private feed URL per person.

Rooms of the package
--------------------
``scheduling``  create, read, list with counts, cancel; :func:`lock_session`
``signups``     sign up, the waitlist, cancel and promote
``attendance``  the check-in code, check-in and check-out, minutes served
``delivery``    the delivery from attendance
``calendar``    iCalendar documents and the private feed token
``reminders``   the reminder before a session (``flask notifications remind``)
"""

from __future__ import annotations

from .attendance import (
    CHECK_IN_MARGIN,
    CODE_WINDOW,
    CheckInCode,
    attendance_of,
    attendance_row,
    check_in,
    check_out,
    code_matches,
    current_code,
    minutes_served,
)
from .calendar import (
    feed_token,
    project_titles,
    reset_feed_token,
    sessions_of,
    to_ics,
    upcoming_of,
    user_of_token,
)
from .delivery import deliver
from .reminders import REMIND_BEFORE, remind_upcoming
from .scheduling import (
    MAX_SESSION,
    SessionView,
    cancel_session,
    counts,
    create_session,
    get_session,
    get_visible_session,
    list_sessions,
    lock_session,
    present,
    project_of,
)
from .signups import cancel_signup, signed_up_ids, signup, signups_of

__all__ = [
    "REMIND_BEFORE",
    "remind_upcoming",
    "CHECK_IN_MARGIN",
    "CODE_WINDOW",
    "MAX_SESSION",
    "CheckInCode",
    "SessionView",
    "attendance_of",
    "attendance_row",
    "cancel_session",
    "cancel_signup",
    "check_in",
    "check_out",
    "code_matches",
    "counts",
    "create_session",
    "current_code",
    "deliver",
    "feed_token",
    "get_session",
    "get_visible_session",
    "list_sessions",
    "lock_session",
    "minutes_served",
    "present",
    "project_titles",
    "project_of",
    "reset_feed_token",
    "sessions_of",
    "signed_up_ids",
    "signup",
    "signups_of",
    "to_ics",
    "upcoming_of",
    "user_of_token",
]
