"""The life of the data after ingestion: retention, erasure, and the append-only guard.

- `guard`: the ledger, raw history and quarantine are append-only outside the two jobs
  below; a seal (row counts and an order-independent checksum per table) proves it.
- `retention`: purges what is older than its period (`retention.yaml`), with an audit row
  per table and run.
- `erasure`: removes one person's pseudonym everywhere, once per request.

Both jobs take the warehouse lease (ocse/runlock.py) like a pipeline run, verify the seal in
full before they change anything, and re-seal what they changed. Their audit is the
warehouse table `lifecycle.audit` (ocse/lifecycle/audit.py).
"""
