"""session epoch: a password change ends the account's sessions

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# A session cookie names its account as "id.epoch" (gridmgr.people.accounts.session_id); a password change
# raises the account's epoch, so every cookie signed before it (a stolen one too) stops being taken.


def upgrade() -> None:
    op.add_column("users", sa.Column("session_epoch", sa.Integer(), server_default=sa.text("0"), nullable=False))


def downgrade() -> None:
    op.drop_column("users", "session_epoch")
