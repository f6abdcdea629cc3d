"""The sales service: the one function that records a sale for the hall, the counters and group
orders (``service.record_sale``), voids, refunds (``refunds``), the receipt as a document
(``receipts``), as ESC/POS bytes (``escpos``) and the signed link its QR code carries
(``links``).

May import: ``pos.core``, ``pos.accounts``, ``pos.models``, the hall's settings, ``inventory``.
Never ``kiosks``: the counters call in here, not the other way round.
"""
