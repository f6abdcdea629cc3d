"""Group purchases (团购) by unions, firms and canteens: buyers and their agreed prices
(``buyers``), orders from draft to paid (``orders``), their spreadsheet import
(``order_import``), their tables (``models``) and pages (``views``). Deliveries are sales recorded
through ``pos.sales``.

May import: ``pos.core``, ``pos.accounts``, ``pos.sales``, ``pos.models``, ``inventory``. Never
``kiosks``.
"""
