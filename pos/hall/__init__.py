"""The hall: the till's pages (``till``) and its JSON API (the package ``api``: ``base`` holds the
blueprint and what every endpoint shares, ``products``, ``sales``, ``shifts`` and ``document``
register on it), shifts and their pages (``shifts``, ``shift_views``), the hall's settings
(``settings``), printers, printing and the print queue (``printers``, ``printing``,
``print_queue``, ``print_api``), shelf labels (``labels``, ``label_views``), the public receipt
page behind the QR code (``public``) e-invoice requests (``invoices``, ``invoice_views``), and setting the hall up: its name and
paired county, its places and tills (``setup``; the admin's first-run and site pages,
``setup_views``).

Who may approve is not decided here: ``pos.accounts.roles.may_approve`` and, for a PIN typed at the
till, the throttled ``pos.accounts.auth.approver_for_pin`` (asked through ``api.base``).

May import: ``pos.core``, ``pos.accounts``, ``pos.sales``, ``pos.models``, ``inventory``. Never
``kiosks``.
"""
