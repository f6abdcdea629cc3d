"""Catalogue and stock: the bottom layer of the project. It imports nothing from ``pos`` or
``kiosks`` (tests/system/test_layers.py checks every import, those inside functions too); the shared pieces
every package needs live here for that reason.

What lives where:

- foundations: ``base`` (the declarative base, enums, UTC times), ``models`` (products, barcodes,
  suppliers, certificates, locations, lots, stock levels and moves, alerts, the audit log),
  ``money``, ``localtime``, ``fields`` (checking plain values), ``errors``, ``audit``, ``files``
  (uploads), ``web`` (paging, the request's session), ``spreadsheets`` (reading CSV/XLSX, writing
  safe cells);
- one home for small rules: ``credit_codes`` (统一社会信用代码), ``barcodes`` (check digits),
  ``scale`` (scale-label barcodes), ``certification`` (what is certified on a day),
  ``documents`` (the stock documents' tables and ``take_number``, the one atomic counter behind
  every document number: receipts, refunds, group orders, goods receipts, transfers, counts);
- the catalogue: ``catalogue`` (products, categories, search, the till's scan), ``product_rules``
  (what a product's fields may be), ``suppliers`` (suppliers and certificates); the catalogue file:
  ``catalogue_sheet`` (its columns, reading it), ``catalogue_import_plan`` and ``catalogue_import``
  (preview and apply; the file's known products read by ``catalogue_import_known``, written in
  bulk by ``catalogue_import_write`` through ``bulk_rows``), ``catalogue_export``;
- stock: ``ledger`` (every move, one statement per level), ``stock_documents`` (what every
  document shares: checks, numbering, posting, the hook that keeps posted documents immutable),
  ``receiving``, ``transfers``, ``counts``, ``expiry`` (first expiry first out, expiring lots,
  write-offs), ``reorder``, ``stock_levels`` (the ledger's read side), ``alerts``, ``locations`` (the site's own and
  bookkeeping locations), ``opening_stock`` (a place's opening count, one document);
- pages: ``catalogue_views`` (with ``catalogue_supplier_views`` and ``catalogue_import_views``) and
  ``stock_views`` (with ``stock_document_views``), forms in ``catalogue_forms`` and ``stock_forms``;
  templates in templates/inventory/. The app factory registers the two blueprints and their access.
"""
