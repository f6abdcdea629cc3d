"""payment attempts: one row per payment-code payment (our out_trade_no, the provider's transaction id,
its state) and one per call to the provider; payments and refunds name the attempt they settle,
refunds through a provider carry our out_refund_no and the provider's state (issue 15)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 08:00:00
"""
from alembic import op
import sqlalchemy as sa
import inventory.base


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('payment_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=10), nullable=False),
    sa.Column('out_trade_no', sa.String(length=32), nullable=False),
    sa.Column('auth_code', sa.String(length=16), nullable=False),
    sa.Column('till_id', sa.Integer(), nullable=True),
    sa.Column('cashier_id', sa.Integer(), nullable=True),
    sa.Column('client_sale_id', sa.String(length=64), nullable=True),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.Column('state', sa.Enum('pending', 'success', 'userpaying', 'failed', 'unknown', 'reversing', 'reversed', name='payment_attempt_state', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('transaction_id', sa.String(length=64), nullable=True),
    sa.Column('message', sa.String(length=200), nullable=True),
    sa.Column('created_at', inventory.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', inventory.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_query_at', inventory.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sale_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['cashier_id'], ['users.id'], name=op.f('fk_payment_attempts_cashier_id_users')),
    sa.ForeignKeyConstraint(['sale_id'], ['sales.id'], name=op.f('fk_payment_attempts_sale_id_sales')),
    sa.ForeignKeyConstraint(['till_id'], ['tills.id'], name=op.f('fk_payment_attempts_till_id_tills')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_attempts')),
    sa.UniqueConstraint('out_trade_no', name=op.f('uq_payment_attempts_out_trade_no'))
    )
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_attempts_client_sale_id'), ['client_sale_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_attempts_sale_id'), ['sale_id'], unique=False)
        batch_op.create_index('ix_payment_attempts_state', ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_attempts_transaction_id'), ['transaction_id'], unique=False)

    op.create_table('payment_attempt_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('attempt_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('raw', sa.Text(), nullable=True),
    sa.Column('at', inventory.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['attempt_id'], ['payment_attempts.id'], name=op.f('fk_payment_attempt_events_attempt_id_payment_attempts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_attempt_events'))
    )
    with op.batch_alter_table('payment_attempt_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_attempt_events_attempt_id'), ['attempt_id'], unique=False)

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempt_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_payments_attempt_id'), ['attempt_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_payments_attempt_id_payment_attempts'), 'payment_attempts', ['attempt_id'], ['id'])

    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempt_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('out_refund_no', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('provider_state', sa.String(length=12), nullable=True))
        batch_op.create_index(batch_op.f('ix_refunds_attempt_id'), ['attempt_id'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_refunds_out_refund_no'), ['out_refund_no'])
        batch_op.create_foreign_key(batch_op.f('fk_refunds_attempt_id_payment_attempts'), 'payment_attempts', ['attempt_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_refunds_attempt_id_payment_attempts'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_refunds_out_refund_no'), type_='unique')
        batch_op.drop_index(batch_op.f('ix_refunds_attempt_id'))
        batch_op.drop_column('provider_state')
        batch_op.drop_column('out_refund_no')
        batch_op.drop_column('attempt_id')

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_payments_attempt_id_payment_attempts'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_payments_attempt_id'))
        batch_op.drop_column('attempt_id')

    with op.batch_alter_table('payment_attempt_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_attempt_events_attempt_id'))

    op.drop_table('payment_attempt_events')
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_attempts_transaction_id'))
        batch_op.drop_index('ix_payment_attempts_state')
        batch_op.drop_index(batch_op.f('ix_payment_attempts_sale_id'))
        batch_op.drop_index(batch_op.f('ix_payment_attempts_client_sale_id'))

    op.drop_table('payment_attempts')
