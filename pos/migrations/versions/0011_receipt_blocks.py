"""receipt blocks: receipt numbers a till reserved for a local day (to print offline receipts with
their final numbers), taken from the document counters

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 10:00:00
"""
from alembic import op
import sqlalchemy as sa
import inventory.base


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('receipt_blocks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('till_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('first_no', sa.Integer(), nullable=False),
    sa.Column('last_no', sa.Integer(), nullable=False),
    sa.Column('reserved_at', inventory.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reserved_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('first_no >= 1 AND last_no >= first_no', name=op.f('ck_receipt_blocks_numbers_in_order')),
    sa.ForeignKeyConstraint(['reserved_by_id'], ['users.id'], name=op.f('fk_receipt_blocks_reserved_by_id_users')),
    sa.ForeignKeyConstraint(['till_id'], ['tills.id'], name=op.f('fk_receipt_blocks_till_id_tills')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_receipt_blocks'))
    )
    with op.batch_alter_table('receipt_blocks', schema=None) as batch_op:
        batch_op.create_index('ix_receipt_blocks_till_id_day', ['till_id', 'day'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('receipt_blocks', schema=None) as batch_op:
        batch_op.drop_index('ix_receipt_blocks_till_id_day')

    op.drop_table('receipt_blocks')
