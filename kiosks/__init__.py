"""The 126 consumption counters (消费帮扶智能专柜): registry, planograms, the counter API,
refills, the restocker's pages, a fleet simulator, and the import of counters from a spreadsheet
(``fleet_import``). May use ``inventory`` and ``pos``'s sales
service; nothing imports kiosks but the app factory."""
