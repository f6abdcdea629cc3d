"""Users and what they may do: passwords, PINs and the login throttle (``users``, with
``active_approver``, the check a service makes of the approver it is given), the roles, the areas
each may use and who may approve (``roles``: ``may_approve``), the login pages and the manager's
approval by PIN at the till (``auth``: ``approver_for_pin``, throttled like PIN login, the only
place a typed PIN is checked for an approval), and the admin's user pages (``admin``).

May import: ``pos.core``, ``pos.models``, ``inventory``. Never ``kiosks``.
"""
