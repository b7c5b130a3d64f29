{#- Braze: the custom events /users/track receives this run (they start and
    steer the Canvas of each touchpoint). Braze events carry no idempotency key,
    so the sync delivers each event_id once through its ledger. -#}
with

events as (

    select * from {{ ref('int_sync_events') }}

),

final as (

    select
        event_id,
        user_id as external_id,
        event_name,
        occurred_at,
        properties
    from events

)

select * from final
