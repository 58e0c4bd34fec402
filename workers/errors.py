"""The one exception root of workers/ (processes), and where every layer's errors become exit codes::

    WorkersError              a process could not start or find what it needs
    ├── ScheduleError         a schedule file entry is invalid (entry, field)        workers.schedules
    ├── StackError            an embedded service would not start                    workers.stack_processes
    ├── DemoError             the demo could not run                                 workers.demo_real
    └── BatchNotFound         no (or no unique) batch for an id given on the command line   workers.cli

The CLI translates, once (:func:`workers.cli.main`), ``ConfigError`` (config), ``PersistenceError``
(storage), ``LetzflowError`` (spec) and ``WorkersError`` into a message and exit code 2.
"""

from __future__ import annotations


class WorkersError(Exception):
    """Root of every error the process layer raises on purpose."""


class BatchNotFound(WorkersError, LookupError):
    """No batch, or more than one, matches the id given."""
