"""search indexes: the till's product search (pg_trgm / FTS5 trigram, prefix ranges in code-point
order) and the quick keys' last 30 days read through sales (local_date, status) and sale_lines
(sale_id, product_id) instead of a scan of every sale line

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 08:30:00
"""
from alembic import op

from inventory import search_index


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_sales_local_date_status', 'sales', ['local_date', 'status', 'id'], unique=False)
    op.create_index('ix_sale_lines_sale_product', 'sale_lines', ['sale_id', 'product_id'], unique=False)
    search_index.create(op.get_bind())


def downgrade() -> None:
    search_index.drop(op.get_bind())
    op.drop_index('ix_sale_lines_sale_product', table_name='sale_lines')
    op.drop_index('ix_sales_local_date_status', table_name='sales')
