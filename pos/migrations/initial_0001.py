"""Part of revision 0001 (the initial schema), kept beside it only so that no file is longer than
600 lines: the tables that the rest of 0001 refers to (catalogue, locations, people, counters, stock
levels' reference data). Frozen history: like every migration, never edit it; change the schema in a
new revision."""
from alembic import op
import sqlalchemy as sa
import inventory.base


def create_reference_tables() -> None:
    op.create_table('categories',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_categories')),
    sa.UniqueConstraint('name', name=op.f('uq_categories_name'))
    )
    op.create_table('locations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.Enum('base', 'hall_floor', 'hall_store', 'kiosk', 'van', 'supplier', 'customer', 'loss', 'count_adjustment', name='location_kind', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_locations')),
    sa.UniqueConstraint('code', name=op.f('uq_locations_code'))
    )
    with op.batch_alter_table('locations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_locations_kind'), ['kind'], unique=False)

    op.create_table('login_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=40), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('at', inventory.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempts'))
    )
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_login_attempts_ip_at', ['ip', 'at'], unique=False)
        batch_op.create_index('ix_login_attempts_username_at', ['username', 'at'], unique=False)

    op.create_table('receipt_counters',
    sa.Column('prefix', sa.String(length=20), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('last_no', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('prefix', 'day', name=op.f('pk_receipt_counters'))
    )
    op.create_table('settings',
    sa.Column('key', sa.String(length=60), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_settings'))
    )
    op.create_table('suppliers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('credit_code', sa.String(length=18), nullable=True),
    sa.Column('province', sa.String(length=40), nullable=False),
    sa.Column('origin_county', sa.String(length=60), nullable=True),
    sa.Column('origin_county_code', sa.String(length=6), nullable=True),
    sa.Column('origin_township', sa.String(length=60), nullable=True),
    sa.Column('origin_village', sa.String(length=60), nullable=True),
    sa.Column('contact_name', sa.String(length=60), nullable=True),
    sa.Column('contact_phone', sa.String(length=30), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suppliers')),
    sa.UniqueConstraint('credit_code', name=op.f('uq_suppliers_credit_code')),
    sa.UniqueConstraint('name', name=op.f('uq_suppliers_name'))
    )
    with op.batch_alter_table('suppliers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_suppliers_origin_county_code'), ['origin_county_code'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=40), nullable=False),
    sa.Column('display_name', sa.String(length=60), nullable=False),
    sa.Column('role', sa.Enum('admin', 'manager', 'cashier', 'restocker', 'auditor', name='role', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('pin_hash', sa.String(length=200), nullable=True),
    sa.Column('locale', sa.String(length=10), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('session_version', sa.Integer(), nullable=False),
    sa.Column('created_at', inventory.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', inventory.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', inventory.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('entity', sa.String(length=40), nullable=False),
    sa.Column('entity_id', sa.String(length=40), nullable=True),
    sa.Column('before', sa.Text(), nullable=True),
    sa.Column('after', sa.Text(), nullable=True),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_audit_events_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_user_id'), ['user_id'], unique=False)

    op.create_table('certificates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=60), nullable=False),
    sa.Column('issuer', sa.String(length=120), nullable=False),
    sa.Column('supplier_id', sa.Integer(), nullable=True),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=False),
    sa.Column('scan_path', sa.String(length=200), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.CheckConstraint('valid_to >= valid_from', name=op.f('ck_certificates_valid_range')),
    sa.ForeignKeyConstraint(['supplier_id'], ['suppliers.id'], name=op.f('fk_certificates_supplier_id_suppliers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_certificates')),
    sa.UniqueConstraint('number', name=op.f('uq_certificates_number'))
    )
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_certificates_supplier_id'), ['supplier_id'], unique=False)

    op.create_table('kiosks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=8), nullable=False),
    sa.Column('site_name', sa.String(length=120), nullable=False),
    sa.Column('host_org', sa.String(length=120), nullable=False),
    sa.Column('site_type', sa.Enum('government', 'hospital', 'school', 'factory', 'canteen', 'other', name='site_type', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('town', sa.String(length=30), nullable=False),
    sa.Column('address', sa.String(length=200), nullable=False),
    sa.Column('latitude', sa.Float(), nullable=True),
    sa.Column('longitude', sa.Float(), nullable=True),
    sa.Column('food_filing_no', sa.String(length=40), nullable=True),
    sa.Column('status', sa.Enum('active', 'paused', 'retired', name='kiosk_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('location_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=True),
    sa.Column('token_issued_at', inventory.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_heartbeat_at', inventory.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_sale_at', inventory.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('door_open', sa.Boolean(), nullable=False),
    sa.Column('temperature_c', sa.Float(), nullable=True),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], name=op.f('fk_kiosks_location_id_locations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kiosks')),
    sa.UniqueConstraint('code', name=op.f('uq_kiosks_code')),
    sa.UniqueConstraint('location_id', name=op.f('uq_kiosks_location_id')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_kiosks_token_hash'))
    )
    with op.batch_alter_table('kiosks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kiosks_town'), ['town'], unique=False)

    op.create_table('products',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('pinyin_initials', sa.String(length=120), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=True),
    sa.Column('supplier_id', sa.Integer(), nullable=True),
    sa.Column('unit', sa.Enum('piece', 'kg', name='unit', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('sold_by_weight', sa.Boolean(), nullable=False),
    sa.Column('price_fen', sa.Integer(), nullable=False),
    sa.Column('cost_fen', sa.Integer(), nullable=True),
    sa.Column('vat', sa.Enum('9', '13', 'exempt', name='vat_rate', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('vat_exemption_code', sa.String(length=20), nullable=True),
    sa.Column('tax_code', sa.String(length=19), nullable=True),
    sa.Column('shelf_life_days', sa.Integer(), nullable=True),
    sa.Column('origin_county', sa.String(length=60), nullable=True),
    sa.Column('origin_county_code', sa.String(length=6), nullable=True),
    sa.Column('origin_township', sa.String(length=60), nullable=True),
    sa.Column('origin_village', sa.String(length=60), nullable=True),
    sa.Column('scale_plu', sa.Integer(), nullable=True),
    sa.Column('photo_path', sa.String(length=200), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', inventory.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("unit = 'kg' OR NOT sold_by_weight", name=op.f('ck_products_weighed_goods_in_kg')),
    sa.CheckConstraint('cost_fen IS NULL OR cost_fen >= 0', name=op.f('ck_products_cost_non_negative')),
    sa.CheckConstraint('price_fen >= 0', name=op.f('ck_products_price_non_negative')),
    sa.CheckConstraint('shelf_life_days IS NULL OR shelf_life_days > 0', name=op.f('ck_products_shelf_life_positive')),
    sa.ForeignKeyConstraint(['category_id'], ['categories.id'], name=op.f('fk_products_category_id_categories')),
    sa.ForeignKeyConstraint(['supplier_id'], ['suppliers.id'], name=op.f('fk_products_supplier_id_suppliers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_products')),
    sa.UniqueConstraint('scale_plu', name=op.f('uq_products_scale_plu')),
    sa.UniqueConstraint('sku', name=op.f('uq_products_sku'))
    )
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_products_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_products_pinyin_initials'), ['pinyin_initials'], unique=False)
        batch_op.create_index(batch_op.f('ix_products_supplier_id'), ['supplier_id'], unique=False)

    op.create_table('tills',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=10), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('location_id', sa.Integer(), nullable=False),
    sa.Column('printer_uri', sa.String(length=200), nullable=False),
    sa.Column('paper_columns', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.CheckConstraint('paper_columns IN (32, 48)', name=op.f('ck_tills_paper_columns')),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], name=op.f('fk_tills_location_id_locations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tills')),
    sa.UniqueConstraint('code', name=op.f('uq_tills_code'))
    )
    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('below_reorder', 'negative_stock', 'expiring_lot', 'certificate_lapsing', 'price_mismatch', 'not_in_planogram', 'kiosk_offline', 'kiosk_error', 'late_sale', name='alert_kind', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('message', sa.String(length=300), nullable=False),
    sa.Column('location_id', sa.Integer(), nullable=True),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('ref_type', sa.String(length=30), nullable=True),
    sa.Column('ref_id', sa.Integer(), nullable=True),
    sa.Column('created_at', inventory.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', inventory.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], name=op.f('fk_alerts_location_id_locations')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_alerts_product_id_products')),
    sa.ForeignKeyConstraint(['resolved_by_id'], ['users.id'], name=op.f('fk_alerts_resolved_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alerts_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_resolved_at'), ['resolved_at'], unique=False)

    op.create_table('barcodes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.Enum('ean13', 'ean8', 'upca', 'internal', name='barcode_kind', native_enum=False, create_constraint=True), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_barcodes_product_id_products'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_barcodes')),
    sa.UniqueConstraint('code', name=op.f('uq_barcodes_code'))
    )
    with op.batch_alter_table('barcodes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_barcodes_product_id'), ['product_id'], unique=False)

    op.create_table('certificate_products',
    sa.Column('certificate_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['certificate_id'], ['certificates.id'], name=op.f('fk_certificate_products_certificate_id_certificates'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_certificate_products_product_id_products'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('certificate_id', 'product_id', name=op.f('pk_certificate_products'))
    )
    op.create_table('lots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('lot_no', sa.String(length=40), nullable=False),
    sa.Column('produced_on', sa.Date(), nullable=True),
    sa.Column('expires_on', sa.Date(), nullable=True),
    sa.Column('created_at', inventory.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_lots_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lots')),
    sa.UniqueConstraint('product_id', 'lot_no', name=op.f('uq_lots_product_id_lot_no'))
    )
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lots_expires_on'), ['expires_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_lots_product_id'), ['product_id'], unique=False)

    op.create_table('planogram_slots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kiosk_id', sa.Integer(), nullable=False),
    sa.Column('slot', sa.String(length=8), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('par', sa.Integer(), nullable=False),
    sa.Column('price_fen', sa.Integer(), nullable=False),
    sa.CheckConstraint('par > 0', name=op.f('ck_planogram_slots_par_positive')),
    sa.CheckConstraint('price_fen >= 0', name=op.f('ck_planogram_slots_price_non_negative')),
    sa.ForeignKeyConstraint(['kiosk_id'], ['kiosks.id'], name=op.f('fk_planogram_slots_kiosk_id_kiosks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_planogram_slots_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_planogram_slots')),
    sa.UniqueConstraint('kiosk_id', 'slot', name=op.f('uq_planogram_slots_kiosk_id_slot'))
    )
    with op.batch_alter_table('planogram_slots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_planogram_slots_kiosk_id'), ['kiosk_id'], unique=False)

    op.create_table('price_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('old_price_fen', sa.Integer(), nullable=False),
    sa.Column('new_price_fen', sa.Integer(), nullable=False),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.Column('changed_at', inventory.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['changed_by_id'], ['users.id'], name=op.f('fk_price_changes_changed_by_id_users')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_price_changes_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_price_changes'))
    )
    with op.batch_alter_table('price_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_price_changes_product_id'), ['product_id'], unique=False)

    op.create_table('reorder_points',
    sa.Column('location_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('min_qty_milli', sa.Integer(), nullable=False),
    sa.CheckConstraint('min_qty_milli >= 0', name=op.f('ck_reorder_points_min_non_negative')),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], name=op.f('fk_reorder_points_location_id_locations')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_reorder_points_product_id_products')),
    sa.PrimaryKeyConstraint('location_id', 'product_id', name=op.f('pk_reorder_points'))
    )
