-- The sync's own state, in the schema named by UPSHIFT_SYNC_SCHEMA (default upshift_sync).
-- Created idempotently before every step; {schema} is replaced by the quoted schema name.
-- dbt reads event_ledger and sync_log as the source upshift_sync (dbt_project/models/staging/upshift_sync):
-- which touchpoints earlier as-of dates delivered.

create schema if not exists {schema};

-- What each destination last accepted per user: the hash that decides "changed", the payload
-- (to know which attributes to clear when they disappear) and, for Iterable, the static lists
-- the user is subscribed to. A row is written only after the destination accepted the batch.
create table if not exists {schema}.user_state (
    destination text not null,
    user_id text not null,
    payload_hash text not null,
    payload jsonb not null default '{{}}',
    lists jsonb not null default '[]',
    accepted_at timestamp with time zone not null,
    run_id text not null,
    primary key (destination, user_id)
);

-- The email the destination holds the user under (Iterable), to send a change of email
-- through users/updateEmail. Never logged.
alter table {schema}.user_state add column if not exists email text;

-- Outbox of trigger events: a row is pending (attempt recorded) before its batch is sent and
-- sent right after the destination accepts it. ambiguous: the batch may or may not have been
-- processed (Braze events have no idempotency key) - reconciled or reviewed, never resent blindly.
create table if not exists {schema}.event_ledger (
    destination text not null,
    event_id text not null,
    user_id text not null,
    event_name text not null,
    payload jsonb not null,
    status text not null check (status in ('pending', 'sent', 'failed', 'ambiguous')),
    attempts integer not null default 0,
    first_attempt_at timestamp with time zone,
    last_attempt_at timestamp with time zone,
    sent_at timestamp with time zone,
    last_error text,
    run_id text not null,
    primary key (destination, event_id)
);

-- One row per failed user / event / list membership per run, with the destination's reason.
-- Resolved (resolved_at, resolved_by_run_id) when a later run gets the same object accepted.
create table if not exists {schema}.sync_errors (
    error_id bigserial primary key,
    run_id text not null,
    destination text not null,
    step text not null,
    object_type text not null check (object_type in ('user', 'event', 'list')),
    object_id text not null,
    reason text not null,
    detail text,
    occurred_at timestamp with time zone not null,
    resolved_at timestamp with time zone,
    resolved_by_run_id text
);

create index if not exists sync_errors_open
    on {schema}.sync_errors (destination, step, object_type, object_id)
    where resolved_at is null;

-- One row per run, step and destination: what the growth team and the metrics read.
create table if not exists {schema}.sync_log (
    run_id text not null,
    step text not null,
    destination text not null,
    as_of_date date,
    dry_run boolean not null,
    full_resync boolean not null,
    started_at timestamp with time zone not null,
    finished_at timestamp with time zone,
    considered integer not null default 0,
    sent integer not null default 0,
    unchanged integer not null default 0,
    removed integer not null default 0,
    failed integer not null default 0,
    retried integer not null default 0,
    events_sent integer not null default 0,
    events_failed integer not null default 0,
    duration_seconds numeric,
    summary jsonb,
    primary key (run_id, step, destination)
);

-- Iterable static lists by name (listIds are per project; names come from the dbt model).
create table if not exists {schema}.iterable_lists (
    list_name text primary key,
    list_id bigint not null,
    created_at timestamp with time zone not null
);
