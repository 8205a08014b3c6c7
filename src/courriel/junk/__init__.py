"""Junk filtering: connection checks on port 25, content scoring, a per-user Bayesian filter.

Invariants:

* nothing is dropped: a message judged junk goes to the recipient's Junk mailbox;
* a DNS lookup that fails or times out never refuses anything (it counts as "not listed");
* every refusal and every message sent to Junk carries its reason, in the reply or in the
  X-Spam-Status field, and in a log line;
* each user's model lives in the store (``JunkStore``), so every process and node scores alike;
  a message is counted once per user, as the class it was last trained as;
* work per message is bounded: ``tokens.MAX_TOKENS`` tokens from at most ``view.MAX_TEXT``
  characters of text, from one parse of the message that its stored copies reuse, read in a
  thread when the message is large.
"""
