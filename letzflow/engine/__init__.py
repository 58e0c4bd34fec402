"""The engine: what a poll, a copy or a cancel *decides*, as plain functions of their collaborators.

Each decision takes a :class:`~letzflow.engine.deps.Deps` (the ledger, the LetzAI client, the limiters,
the learned durations, the media store, a clock, the settings values it reads) and answers what it
decided (the poll and the copy: an :class:`~letzflow.engine.outcome.Outcome`). Nothing here imports
Celery or sends a message: the wire (``tasks/``) builds the collaborators once per process and turns
outcomes into retries and chains.

- :mod:`letzflow.engine.poll`: one look at a submitted job; :mod:`letzflow.engine.copy`: its media to storage;
- :mod:`letzflow.engine.cancel`: a batch cancelled, its jobs in flight interrupted;
- :mod:`letzflow.engine.stopping`: a step failed or cancelled, its job interrupted, a batch halted;
- :mod:`letzflow.engine.bounds`: the longest wait before a look, a job's deadline;
- :mod:`letzflow.engine.look_timing`, :mod:`letzflow.engine.polling`, :mod:`letzflow.engine.duration_keys`:
  when to look (the pure policy, applied to a step with the learned durations);
- :mod:`letzflow.engine.resources`: which client resource answers for a step's job.
"""
