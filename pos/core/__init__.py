"""The platform every package may use: the database and its sessions (``db``: engines, the
request's unit of work, retries of deadlocks, SQLite's writer queue, storage problems as 503), the
web plumbing (``web``: login, roles on views, error pages), the JSON API's models and document
(``openapi``), the domain errors (``errors``), configuration (``config``), the language
(``i18n``), form helpers (``forms``), the audit trail (``audit``) and the refusal of control
characters (``control_chars``), whole-database backups and restores (``backup``) and the
background refresh thread with its one-at-a-time lock (``ticker``).

May import: ``inventory`` (its base, time and money helpers), ``pos.models`` and the roles of
``pos.accounts``. Never ``kiosks``, never the hall, group or report code.
"""
