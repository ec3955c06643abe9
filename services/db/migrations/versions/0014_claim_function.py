"""PostgreSQL: the queue's claim as one function, so a claim is one statement and one round trip

The claim looks for the oldest claimable job, tries its app's advisory lock, and takes the app's
oldest claimable job in a statement of its own (a new snapshot). As separate statements from the
client that was BEGIN, the look, the take and COMMIT: four round trips for every job. A VOLATILE
PL/pgSQL function takes a fresh snapshot for each of its statements, so it keeps that order of
looks exactly, and called in autocommit it is one round trip; the advisory lock is still held until
its transaction's commit is visible. SQLite has nothing to create: one write transaction there
serializes claimers (services.jobs.repository).

Revision ID: e4a5b6c70014
Revises: d3f4a5b60013
Create Date: 2026-12-02 18:45:00.000000
"""

from __future__ import annotations

from alembic import op


revision = 'e4a5b6c70014'
down_revision = 'd3f4a5b60013'
branch_labels = None
depends_on = None

# Leases are naive UTC; p_now is a test's clock or, when NULL, the database's (the time the calling
# statement started). v_skipped: apps the loop already looked at (locked by another claimer, or
# no claimable job left once locked). Once released, a migration is never edited: a change to the
# claim is a new migration with CREATE OR REPLACE.
_BUSY = "SELECT b.app_id FROM jobs b WHERE b.status = 'claimed' AND b.lease_until > v_now"
CLAIM_FUNCTION = f"""
CREATE OR REPLACE FUNCTION serversinc_claim_job(p_space integer, p_worker text, p_lease interval,
                                                p_now timestamp)
RETURNS TABLE (job_id integer, job_deployment_id integer, job_attempts integer)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v_now timestamp;
  v_skipped integer[] := '{{}}';
  v_app integer;
  v_locked boolean;
BEGIN
  LOOP
    v_now := COALESCE(p_now, statement_timestamp() AT TIME ZONE 'UTC');
    SELECT c.app_id, pg_try_advisory_xact_lock(p_space, c.app_id) INTO v_app, v_locked
    FROM (
      SELECT x.id, x.app_id FROM (
        (SELECT q.id, q.app_id FROM jobs q
          WHERE q.status = 'queued' AND q.app_id NOT IN ({_BUSY}) AND NOT (q.app_id = ANY(v_skipped))
          ORDER BY q.id LIMIT 1)
        UNION ALL
        (SELECT e.id, e.app_id FROM jobs e
          WHERE e.status = 'claimed' AND e.lease_until <= v_now AND e.app_id NOT IN ({_BUSY})
            AND NOT (e.app_id = ANY(v_skipped))
          ORDER BY e.id LIMIT 1)
      ) AS x ORDER BY x.id LIMIT 1
    ) AS c;
    IF NOT FOUND THEN
      RETURN;
    END IF;
    v_skipped := v_skipped || v_app;
    CONTINUE WHEN NOT v_locked;  -- another replica's worker is claiming this app's job right now
    RETURN QUERY
      UPDATE jobs SET status = 'claimed', claimed_by = p_worker, attempts = jobs.attempts + 1,
        lease_until = v_now + p_lease
      WHERE jobs.id = (
        SELECT t.id FROM jobs t
        WHERE t.app_id = v_app AND t.app_id NOT IN ({_BUSY})
          AND (t.status = 'queued' OR (t.status = 'claimed' AND t.lease_until <= v_now))
        ORDER BY t.id LIMIT 1 FOR UPDATE)
      RETURNING jobs.id, jobs.deployment_id, jobs.attempts;
    IF FOUND THEN
      RETURN;
    END IF;
  END LOOP;
END
$$"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CLAIM_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS serversinc_claim_job(integer, text, interval, timestamp)")
