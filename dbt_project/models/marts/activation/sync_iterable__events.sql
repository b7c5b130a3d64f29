{#- Iterable: the custom events /api/events/trackBulk receives this run (they
    trigger and steer the journey of each touchpoint). Iterable dedupes events
    on `id`, which is our event_id; the sync's ledger keeps them from being sent
    twice in the first place. -#}
with

events as (

    select * from {{ ref('messaging_events') }}

),

final as (

    select
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        cast(user_id as {{ dbt.type_string() }}) as user_id,
        cast(event_name as {{ dbt.type_string() }}) as event_name,
        occurred_at,
        cast(properties as {{ type_json() }}) as properties
    from events

)

select * from final
