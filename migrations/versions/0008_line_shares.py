"""line shares: a stretch of line along a shared cell edge counts half to each of the two cells

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# 0001's cell_shares left out every cell a feature only touches: right for polygons (an edge has no
# area) but a kerb line drawn exactly along a cell edge touches both cells and so had no cell at all,
# and a line running partly along an edge lost that part. Now a line's share in a cell is its length
# there, less half of what lies on the cell's edge with a neighbour (an edge stretch belongs to two
# cells, never more: cells do not overlap), so the shares sum to 1. cell_for ranks by the full length
# in each cell; halving the shared stretches keeps the same order, so the primary cell is the one with
# the largest share (ties: the lowest code, as before).
SHARED = """
CREATE OR REPLACE FUNCTION cell_shares(g geometry, at timestamptz DEFAULT now())
RETURNS TABLE (cell_id bigint, share double precision)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT f.cell_id, 1.0::double precision FROM cell_for(g, at) f WHERE ST_Dimension(g) = 0
  UNION ALL
  SELECT c.id, ST_Area(ST_Intersection(c.geom, g)::geography) / NULLIF(ST_Area(g::geography), 0)
  FROM grid_cells c
  WHERE ST_Dimension(g) = 2 AND c.geom && g AND ST_Intersects(c.geom, g)
    AND c.valid_from <= at AND (c.valid_to IS NULL OR at < c.valid_to)
    AND NOT ST_Touches(c.geom, g)
  UNION ALL
  SELECT s.id, s.share FROM (
    SELECT c.id,
           (ST_Length(ST_Intersection(c.geom, g)::geography) - 0.5 * coalesce(e.len, 0))
             / NULLIF(ST_Length(g::geography), 0) AS share
    FROM grid_cells c
    LEFT JOIN LATERAL (
      SELECT sum(ST_Length(ST_Intersection(ST_Intersection(c.geom, g), o.geom)::geography)) AS len
      FROM grid_cells o
      WHERE o.id <> c.id AND o.geom && c.geom AND o.geom && g AND ST_Intersects(o.geom, g)
        AND o.valid_from <= at AND (o.valid_to IS NULL OR at < o.valid_to)
    ) e ON true
    WHERE ST_Dimension(g) = 1 AND c.geom && g AND ST_Intersects(c.geom, g)
      AND c.valid_from <= at AND (c.valid_to IS NULL OR at < c.valid_to)
  ) s
  WHERE s.share > 1e-9  -- a line crossing a cell's corner only meets it in a point
$$;
"""

# 0001's definition, restored on downgrade
TOUCHING_LEFT_OUT = """
CREATE OR REPLACE FUNCTION cell_shares(g geometry, at timestamptz DEFAULT now())
RETURNS TABLE (cell_id bigint, share double precision)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT f.cell_id, 1.0::double precision FROM cell_for(g, at) f WHERE ST_Dimension(g) = 0
  UNION ALL
  SELECT c.id,
         CASE ST_Dimension(g)
           WHEN 1 THEN ST_Length(ST_Intersection(c.geom, g)::geography) / NULLIF(ST_Length(g::geography), 0)
           ELSE ST_Area(ST_Intersection(c.geom, g)::geography) / NULLIF(ST_Area(g::geography), 0) END
  FROM grid_cells c
  WHERE ST_Dimension(g) > 0 AND c.geom && g AND ST_Intersects(c.geom, g)
    AND c.valid_from <= at AND (c.valid_to IS NULL OR at < c.valid_to)
    AND NOT ST_Touches(c.geom, g)
$$;
"""


def upgrade() -> None:
    op.execute(SHARED)


def downgrade() -> None:
    op.execute(TOUCHING_LEFT_OUT)
