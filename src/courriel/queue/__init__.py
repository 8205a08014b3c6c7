"""The outbound queue: mail for other domains, from acceptance to delivery or bounce.

Modules: ``outbound`` (what the SMTP session hands over: ``Queue``, ``StoreQueue``,
``RelayDisabled``), ``transport`` (what carries one message to one domain), ``schedule`` (when
to try again, when to give up: pure), ``worker`` (the loop in each serving process), ``bounce``
(the notices owed to senders), ``cli`` (``courriel queue ...``). The entries themselves live in
the store (``courriel.store.queue``).

Invariants (tests/queue, tests/store/test_store_queue.py):

* a message acknowledged with 250 is in the store, with every remote recipient, before the 250;
  it is in exactly one entry;
* one entry is worked on by one worker at a time (the lease), across processes and machines;
* a recipient is final (delivered or failed) at most once; a final recipient is never tried
  again; a temporary failure is tried again no later than the schedule says, and never after
  the message has expired;
* a notice owed is cleared only after it was stored: a crash may repeat one, never lose one;
  nothing is ever sent to the null reverse-path, and NOTIFY=NEVER means nothing at all;
* an entry disappears only when no recipient is queued and no notice is owed, or when the
  postmaster removes it.
"""
