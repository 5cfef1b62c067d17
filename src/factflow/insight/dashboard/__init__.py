"""The web dashboard of `factflow serve`: the talk's question on the front, every KPI as a chart
and a table, filters, CSV downloads and live pipeline status, over a read-only JSON API.

Needs the `dashboard` extra: ``pip install 'factflow[dashboard]'``.

```
GET /                       the page
GET /api/health, /healthz   {"status": "ok"}, the only answers given without the token
GET /api/kpis               the app's KPIs: name, description, owner, measures, group-bys
GET /api/kpi/NAME           {"kpi", "description", "columns", "measures", "rows", ...}
GET /api/kpi/NAME.csv       the same answer as CSV (or ?format=csv)
GET /api/status             events, events per second, last event time, dead letters
```

`/api/kpi/NAME` takes ``by``, ``where=NAME:VALUE``, ``from`` and ``to`` (see `_questions`).
"""

from __future__ import annotations

from factflow.insight.dashboard._access import COOKIE
from factflow.insight.dashboard._app import HEALTH_PATHS, create_app
from factflow.insight.dashboard._questions import Question, parse_question
from factflow.insight.dashboard._readers import WarehouseUnready, probe

__all__ = [
    "COOKIE",
    "HEALTH_PATHS",
    "Question",
    "WarehouseUnready",
    "create_app",
    "parse_question",
    "probe",
]
