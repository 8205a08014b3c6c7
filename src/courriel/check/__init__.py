"""``courriel check``: test a mail set-up end to end and explain every failure in plain words.

Invariants
----------
* Every step ends as one ``report.Step``: passed, warning, failed or skipped, how long it took,
  what was seen, and for anything not passed one ``explain.Explanation`` -- a fixed sentence
  for the likely cause and one for the fix, so tests and scripts can rely on the wording.
* The client side (``client.run``) speaks only the protocols a mail program speaks, so it works
  against any server; the server side (``server.report``) reads courriel's configuration and
  store and returns a ``report.Report`` the web admin can render as well as the command line.
* Nothing here prints: ``render`` turns a report (or its steps as they finish) into text or JSON.
"""
