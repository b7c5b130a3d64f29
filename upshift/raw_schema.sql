-- The raw data contract: the tables the marketplace's warehouse provides.
-- {schema} is replaced with the configured raw schema (default "raw").
-- Columns are typed as the contract says, but nothing is constrained: bad rows
-- (duplicate ids, null keys, unknown enum values, ...) must be able to arrive so
-- that the dbt staging layer can quarantine them with a reason.
-- Event tables are indexed on their event timestamp: a daily run reads only the
-- last few days of them (dbt's validation batch, the raw gate's window), which a
-- warehouse serves from an index or a date partition, not a scan of all history.
create schema if not exists {schema};

create table if not exists {schema}.users (
    user_id text,
    role text,
    email text,
    phone text,
    country text,
    created_at timestamptz
);

create table if not exists {schema}.bookings (
    booking_id text,
    client_id text,
    worker_id text,
    category text,
    amount numeric(12, 2),
    currency text,
    status text,
    booked_at timestamptz
);

create table if not exists {schema}.searches (
    search_id text,
    client_id text,
    category text,
    searched_at timestamptz
);

create table if not exists {schema}.proposals (
    proposal_id text,
    worker_id text,
    job_id text,
    category text,
    status text,
    submitted_at timestamptz
);

create table if not exists {schema}.profile_views (
    view_id text,
    worker_id text,
    viewer_id text,
    viewed_at timestamptz
);

create table if not exists {schema}.contacts (
    contact_id text,
    worker_id text,
    client_id text,
    contacted_at timestamptz
);

create table if not exists {schema}.subscriptions (
    subscription_id text,
    user_id text,
    plan_code text,
    mrr numeric(12, 2),
    is_trial boolean,
    started_at timestamptz,
    ended_at timestamptz
);

create table if not exists {schema}.offer_exposures (
    exposure_id text,
    user_id text,
    offer_code text,
    channel text,
    exposed_at timestamptz
);

create index if not exists bookings_booked_at_idx on {schema}.bookings (booked_at);
create index if not exists searches_searched_at_idx on {schema}.searches (searched_at);
create index if not exists proposals_submitted_at_idx on {schema}.proposals (submitted_at);
create index if not exists profile_views_viewed_at_idx on {schema}.profile_views (viewed_at);
create index if not exists contacts_contacted_at_idx on {schema}.contacts (contacted_at);
create index if not exists offer_exposures_exposed_at_idx on {schema}.offer_exposures (exposed_at);
