"""The sales service, used by the hall, the counters and group orders alike: ``service`` records a
sale (``record_sale``, the one function that does, with the document numbers); ``pricing`` is the
basket arithmetic the till's running total shares with it (order discount and 抹零 spread over
the lines, 抹零 only for a sale paid wholly in cash); ``reading`` finds a sale and gives it as a
plain dict (and names the payment methods); ``voids`` cancels one within its shift; ``refunds``
takes goods back against the original lines; ``receipts``, ``escpos`` and ``links`` make the
receipt as a document, as ESC/POS bytes and as the signed link its QR code carries.

An approver a caller names is checked with ``pos.accounts.users.active_approver``.

May import: ``pos.core``, ``pos.accounts``, ``pos.models``, the hall's settings, ``inventory``.
Never ``kiosks``: the counters call in here, not the other way round.
"""
