"""document counters: one atomic counter for every document kind (receipts, refunds, group orders,
goods receipts, transfers, counts) replaces the receipt counters; seeded so that numbering goes on
without a collision

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 21:00:00
"""
import datetime as dt
import re

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# Stock documents were numbered by reading the day's highest number: their counters start there.
STOCK_DOCUMENTS = {'goods_receipts': 'GR', 'transfers': 'TR', 'stock_counts': 'CT'}
STOCK_NUMBER = re.compile(r'^([A-Z]+)-(\d{8})-(\d+)$')


def _counters_table(name, *kind):
    return sa.table(name, *kind, sa.column('prefix', sa.String(20)), sa.column('day', sa.Date()),
                    sa.column('last_no', sa.Integer()))


def upgrade() -> None:
    op.create_table('document_counters',
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('prefix', sa.String(length=20), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('last_no', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'prefix', 'day', name=op.f('pk_document_counters'))
    )
    conn = op.get_bind()
    op.execute("INSERT INTO document_counters (kind, prefix, day, last_no) "
               "SELECT 'sales', prefix, day, last_no FROM receipt_counters")
    last = {}
    for table, prefix in STOCK_DOCUMENTS.items():
        for (number,) in conn.execute(sa.text(f"SELECT number FROM {table} WHERE number LIKE :p"),
                                      {'p': prefix + '-%'}):
            m = STOCK_NUMBER.match(number)
            if m is None or m.group(1) != prefix:
                continue  # typed in by hand: the unique constraint on the number is the backstop
            try:
                day = dt.datetime.strptime(m.group(2), '%Y%m%d').date()
            except ValueError:
                continue
            key = (prefix, day)
            last[key] = max(last.get(key, 0), int(m.group(3)))
    if last:
        op.bulk_insert(_counters_table('document_counters', sa.column('kind', sa.String(20))),
                       [{'kind': 'stock', 'prefix': p, 'day': d, 'last_no': n} for (p, d), n in sorted(last.items())])
    op.drop_table('receipt_counters')


def downgrade() -> None:
    op.create_table('receipt_counters',
    sa.Column('prefix', sa.String(length=20), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('last_no', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('prefix', 'day', name=op.f('pk_receipt_counters'))
    )
    # Stock documents go back to reading the day's highest number; the sales' counters go back.
    op.execute("INSERT INTO receipt_counters (prefix, day, last_no) "
               "SELECT prefix, day, last_no FROM document_counters WHERE kind = 'sales'")
    op.drop_table('document_counters')
