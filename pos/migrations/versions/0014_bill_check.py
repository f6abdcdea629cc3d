"""the daily bill check (对账): the providers' trade bills as imported, their lines, and the notes
explaining a difference

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 08:00:00
"""
from alembic import op
import sqlalchemy as sa
import inventory.base


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('provider_bills',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=10), nullable=False),
    sa.Column('bill_date', sa.Date(), nullable=False),
    sa.Column('imported_at', inventory.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('imported_by_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('file_sha256', sa.String(length=64), nullable=False),
    sa.Column('line_count', sa.Integer(), nullable=False),
    sa.Column('checked_at', inventory.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('open_items', sa.Integer(), nullable=False),
    sa.CheckConstraint("provider IN ('wechat', 'alipay')", name=op.f('ck_provider_bills_provider_known')),
    sa.CheckConstraint('open_items >= 0', name=op.f('ck_provider_bills_open_items_non_negative')),
    sa.ForeignKeyConstraint(['imported_by_id'], ['users.id'], name=op.f('fk_provider_bills_imported_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_bills')),
    sa.UniqueConstraint('provider', 'bill_date', name=op.f('uq_provider_bills_provider_bill_date'))
    )
    op.create_table('reconcile_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=10), nullable=False),
    sa.Column('bill_date', sa.Date(), nullable=False),
    sa.Column('item_key', sa.String(length=200), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('by_id', sa.Integer(), nullable=False),
    sa.Column('at', inventory.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['by_id'], ['users.id'], name=op.f('fk_reconcile_notes_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconcile_notes')),
    sa.UniqueConstraint('provider', 'bill_date', 'item_key', name=op.f('uq_reconcile_notes_provider_bill_date_item_key'))
    )
    op.create_table('provider_bill_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bill_id', sa.Integer(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('out_trade_no', sa.String(length=64), nullable=True),
    sa.Column('transaction_id', sa.String(length=64), nullable=True),
    sa.Column('out_refund_no', sa.String(length=64), nullable=True),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.Column('at', inventory.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.CheckConstraint("kind IN ('pay', 'refund', 'reversed')", name=op.f('ck_provider_bill_lines_kind_known')),
    sa.CheckConstraint('amount_fen >= 0', name=op.f('ck_provider_bill_lines_amount_non_negative')),
    sa.ForeignKeyConstraint(['bill_id'], ['provider_bills.id'], name=op.f('fk_provider_bill_lines_bill_id_provider_bills'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_bill_lines')),
    sa.UniqueConstraint('bill_id', 'line_no', name=op.f('uq_provider_bill_lines_bill_id_line_no'))
    )
    with op.batch_alter_table('provider_bill_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provider_bill_lines_bill_id'), ['bill_id'], unique=False)
        batch_op.create_index('ix_provider_bill_lines_out_trade_no', ['out_trade_no'], unique=False)
        batch_op.create_index('ix_provider_bill_lines_transaction_id', ['transaction_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('provider_bill_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_provider_bill_lines_transaction_id')
        batch_op.drop_index('ix_provider_bill_lines_out_trade_no')
        batch_op.drop_index(batch_op.f('ix_provider_bill_lines_bill_id'))

    op.drop_table('provider_bill_lines')
    op.drop_table('reconcile_notes')
    op.drop_table('provider_bills')
