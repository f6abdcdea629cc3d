"""virtual locations keep no level rows

Revision ID: 0007
Revises: 0006

The supplier, customer, loss and count-adjustment locations' levels are the sums of their moves
(inventory.ledger): their level rows were hot rows that every sale of a product updated, which
serialised (and, in basket order, deadlocked) the tills and counters on PostgreSQL. The rows are
derived data; the moves keep everything.
"""
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

VIRTUAL = "('supplier', 'customer', 'loss', 'count_adjustment')"


def upgrade() -> None:
    for table in ("lot_levels", "stock_levels"):
        op.execute(f"DELETE FROM {table} WHERE location_id IN "
                   f"(SELECT id FROM locations WHERE kind IN {VIRTUAL})")


def downgrade() -> None:
    # Rebuild the virtual locations' rows from their moves.
    signed = ("SELECT m.{key} AS k, l.id AS loc, SUM(CASE WHEN m.to_location_id = l.id THEN m.qty_milli "
              "ELSE -m.qty_milli END) AS q FROM stock_moves m JOIN locations l "
              "ON l.id IN (m.to_location_id, m.from_location_id) WHERE l.kind IN " + VIRTUAL +
              " {extra} GROUP BY m.{key}, l.id")
    op.execute("INSERT INTO stock_levels (location_id, product_id, qty_milli, reserved_milli) "
               "SELECT loc, k, q, 0 FROM (" + signed.format(key="product_id", extra="") + ") t")
    op.execute("INSERT INTO lot_levels (location_id, lot_id, qty_milli) "
               "SELECT loc, k, q FROM (" + signed.format(key="lot_id", extra="AND m.lot_id IS NOT NULL") + ") t")
