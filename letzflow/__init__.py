"""letzflow's own layer between the LetzAI client and ledger below and the Celery wire above.

- :mod:`letzflow.spec`: the batch spec — parsing, validation against the documented ranges, templating,
  CSV items, and the request each step sends. It imports nothing of Celery, the ledger or Redis.
"""
