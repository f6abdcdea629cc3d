"""What the auditor and the manager read: the consumption-collaboration statistics and the
monthly summary as SQL aggregations (``figures``), their pages and downloads (``views``), the
JSON reports (``api``) and the manager's dashboard (``dashboard``).

May import everything, ``kiosks`` included (the counters' channel is one of the figures).
"""
