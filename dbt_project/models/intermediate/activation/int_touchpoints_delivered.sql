{#- The touchpoints the sync delivered before this as-of date: every destination
    in var sync_destinations accepted the event in a sync of an earlier as-of
    date. Deliveries of this date's own sync (or of later dates) do not count,
    so rebuilding a date after its sync ran gives the same plan; the sync's
    ledger keeps a due touchpoint from being sent twice. A delivery whose run
    left no log row (the run died and a later one reconciled it) counts from
    the day it was accepted. Only the last touchpoint_horizon_days days' syncs
    are read: older triggers get no plan, so their deliveries matter to none. -#}
with

deliveries as (

    select * from {{ ref('stg_upshift_sync__event_deliveries') }}
    where destination in ('{{ var("sync_destinations") | join("', '") }}')

),

runs as (

    select * from {{ ref('stg_upshift_sync__event_runs') }}

),

earlier_deliveries as (

    select
        deliveries.event_id,
        deliveries.destination,
        deliveries.sent_at
    from deliveries
    left join runs
        on
            deliveries.sync_run_id = runs.sync_run_id
            and deliveries.destination = runs.destination
    where
        coalesce(runs.synced_as_of_date, cast(deliveries.sent_at as date)) < {{ as_of_date_literal() }}
        and coalesce(runs.synced_as_of_date, cast(deliveries.sent_at as date))
        >= {{ dbt.dateadd('day', -1 * var('touchpoint_horizon_days'), as_of_date_literal()) }}

),

final as (

    select
        event_id as touchpoint_id,
        max(sent_at) as sent_at
    from earlier_deliveries
    group by event_id
    having count(distinct destination) = {{ var('sync_destinations') | length }}

)

select * from final
