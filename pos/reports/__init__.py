"""What the auditor and the manager read: the consumption-collaboration statistics and the
monthly summary as SQL aggregations (``figures``), their pages and downloads (``views``), the
JSON reports (``api``), the manager's dashboard (``dashboard``) and the refresh of every alert
kind that keeps the dashboard true (``upkeep``: ``songtao tick`` and the server's thread).

May import everything, ``kiosks`` included (the counters' channel is one of the figures).
"""
