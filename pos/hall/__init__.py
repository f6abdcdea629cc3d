"""The hall: the till's pages and its JSON API (``till``, ``api``), shifts and their pages
(``shifts``, ``shift_views``), the hall's settings (``settings``), printers, printing and the print
queue (``printers``, ``printing``, ``print_queue``, ``print_api``), shelf labels (``labels``,
``label_views``), the public receipt page behind the QR code (``public``) and e-invoice requests
(``invoices``, ``invoice_views``), and setting the hall up: its name and paired county, its places
and tills (``setup``; the admin's first-run and site pages, ``setup_views``).

May import: ``pos.core``, ``pos.accounts``, ``pos.sales``, ``pos.models``, ``inventory``. Never
``kiosks``.
"""
