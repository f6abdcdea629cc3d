"""The 126 consumption counters (消费帮扶智能专柜): registry, planograms, the counter API,
refills, the restocker's pages and a fleet simulator. May use ``inventory`` and ``pos``'s sales
service; nothing imports kiosks but the app factory."""
