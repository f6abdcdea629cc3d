"""offline sale prices: sales.price_differs (a sale made offline recorded at the price the till
charged, not the catalogue's) and sale_lines.list_price_fen (the catalogue price beside it)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 07:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sales', schema=None) as batch_op:
        batch_op.add_column(sa.Column('price_differs', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('sale_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('list_price_fen', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sale_lines', schema=None) as batch_op:
        batch_op.drop_column('list_price_fen')
    with op.batch_alter_table('sales', schema=None) as batch_op:
        batch_op.drop_column('price_differs')
