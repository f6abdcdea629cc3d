"""printers: a sale remembers when its first print opened the drawer (kick once per sale), and
print jobs queued for a printer's worker thread (the till asks for their outcome)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 16:50:00
"""
from alembic import op
import sqlalchemy as sa
import inventory.base


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sales', schema=None) as batch_op:
        batch_op.add_column(sa.Column('drawer_kicked_at', inventory.base.UTCDateTime(timezone=True), nullable=True))

    op.create_table('print_jobs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('till_id', sa.Integer(), nullable=True),
    sa.Column('sale_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('pending', 'printed', 'failed', name='print_job_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('error', sa.String(length=300), nullable=True),
    sa.Column('reprint_count', sa.Integer(), nullable=True),
    sa.Column('drawer_kick', sa.Boolean(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', inventory.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', inventory.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_print_jobs_created_by_id_users')),
    sa.ForeignKeyConstraint(['sale_id'], ['sales.id'], name=op.f('fk_print_jobs_sale_id_sales')),
    sa.ForeignKeyConstraint(['till_id'], ['tills.id'], name=op.f('fk_print_jobs_till_id_tills')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_print_jobs'))
    )
    with op.batch_alter_table('print_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_print_jobs_sale_id'), ['sale_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_print_jobs_till_id'), ['till_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('print_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_print_jobs_till_id'))
        batch_op.drop_index(batch_op.f('ix_print_jobs_sale_id'))

    op.drop_table('print_jobs')
    with op.batch_alter_table('sales', schema=None) as batch_op:
        batch_op.drop_column('drawer_kicked_at')
