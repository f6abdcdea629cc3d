"""The 126 consumption counters (消费帮扶智能专柜): their tables (``models``), the registry, tokens
and planograms (``registry``), the counter API v1 (``api``) and what a counter reports, sales and
heartbeats (``ingest``); the fleet seen from the office (``fleet``, ``fleet_views``), which is also
the one home of the rules "offline" and "fill %"; refill routes: planning (``refill_plans``), the
route from loading to finishing (``refills``), the visit at a counter (``refill_visits``) and the
restocker's pages (``refill_views``); a fleet simulator (``simulator``), and the import of counters from a
spreadsheet and the manager's add-counter form (``fleet_import``).

May import: ``inventory``, and of ``pos`` only the platform, the accounts, the sales service and
the shared tables (``pos.core``, ``pos.accounts``, ``pos.sales``, ``pos.models``;
tests/system/test_layers.py holds the table). Only the app factory, the CLI, the schema, the migrations,
the demo and the reports import ``kiosks``.
"""
