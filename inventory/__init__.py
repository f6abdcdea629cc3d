"""Catalogue and stock: products, barcodes, suppliers, certificates, locations, lots, the stock
ledger, receiving, transfers, counts and alerts; the site's own and bookkeeping locations
(``locations``) and the opening count of a place (``opening_stock``).

This is the bottom layer of the project: it imports nothing from ``pos`` or ``kiosks``. The shared
pieces every package needs (the declarative base, money and time helpers, the audit log) live here
for that reason.
"""
