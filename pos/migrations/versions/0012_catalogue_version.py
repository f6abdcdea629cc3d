"""catalogue version: each product remembers the catalogue change that last touched it (itself, its
barcodes or a certificate covering it), so that a till fetches only what changed since its cursor

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 07:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.add_column(sa.Column('catalogue_version', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_index(batch_op.f('ix_products_catalogue_version'), ['catalogue_version'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_products_catalogue_version'))
        batch_op.drop_column('catalogue_version')
