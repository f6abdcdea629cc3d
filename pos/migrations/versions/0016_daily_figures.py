"""daily figures: the reports' daily aggregate (pos.models.DailyFigure), kept by record_sale, voids
and refunds in their own transaction (pos.sales.daily_figures); backfilled here from the existing
sale and refund lines with INSERT … SELECT … GROUP BY, as ``songtao rebuild-aggregates`` does

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 11:20:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'daily_figures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('local_date', sa.Date(), nullable=False),
        sa.Column('channel', sa.String(length=8), nullable=False),
        sa.Column('buyer_type', sa.String(length=12), nullable=False),
        sa.Column('source_kind', sa.String(length=8), nullable=False),
        sa.Column('source_id', sa.Integer(), nullable=False),
        sa.Column('certified', sa.Boolean(), nullable=False),
        sa.Column('county_code', sa.String(length=6), nullable=False),
        sa.Column('township', sa.String(length=60), nullable=False),
        sa.Column('county', sa.String(length=60), nullable=False),
        sa.Column('supplier_id', sa.Integer(), nullable=False),
        sa.Column('supplier_name', sa.String(length=120), nullable=False),
        sa.Column('sales_fen', sa.BigInteger(), nullable=False),
        sa.Column('refunds_fen', sa.BigInteger(), nullable=False),
        sa.Column('sales_n', sa.Integer(), nullable=False),
        sa.Column('supplier_sales', sa.Integer(), nullable=False),
        sa.Column('origin_sales', sa.Integer(), nullable=False),
        sa.Column('n_lines', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_daily_figures')),
        sa.UniqueConstraint('local_date', 'channel', 'buyer_type', 'source_kind', 'source_id', 'certified',
                            'county_code', 'township', 'county', 'supplier_id', 'supplier_name',
                            name='uq_daily_figures_key'),
    )
    from pos.sales import daily_figures  # the one definition of the figures: the same SQL as rebuild-aggregates

    daily_figures.rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_table('daily_figures')
