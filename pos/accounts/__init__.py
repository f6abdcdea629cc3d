"""Users and what they may do: passwords, PINs and the login throttle (``users``), the roles and
the areas each may use (``roles``), the login pages and the manager's approval by PIN at the till
(``auth``), and the admin's user pages (``admin``).

May import: ``pos.core``, ``pos.models``, ``inventory``. Never ``kiosks``.
"""
