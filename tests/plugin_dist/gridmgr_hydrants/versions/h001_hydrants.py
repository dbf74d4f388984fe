"""The hydrants table, on a branch of its own that depends on the core's revisions."""

from alembic import op

revision = "h001"
down_revision = None
branch_labels = ("hydrants",)
depends_on = "0010"


def upgrade():
    from gridmgr_hydrants import TABLE

    TABLE.create(op.get_bind())


def downgrade():
    from gridmgr_hydrants import TABLE

    TABLE.drop(op.get_bind())
