"""The one exception root of letzflow/ (the spec layer)::

LetzflowError             a spec or a template is wrong; the message says where and how to fix it
├── SpecError             every problem of a spec at once (line, item, field)      letzflow.spec.problems
└── TemplateError         a prompt template names a field the item lacks           letzflow.spec.requests
"""

from __future__ import annotations


class LetzflowError(Exception):
    """Root of every error the spec layer raises."""
