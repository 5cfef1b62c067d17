"""The fault-injection suite of issue 8: scenarios checked against a Jepsen-style ledger."""
