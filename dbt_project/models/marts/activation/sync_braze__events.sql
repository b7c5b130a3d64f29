{#- Braze: the custom events /users/track receives this run (they start and
    steer the Canvas of each touchpoint). Braze events carry no idempotency key,
    so the sync delivers each event_id once through its ledger. -#}
with

events as (

    select * from {{ ref('messaging_events') }}

),

final as (

    select
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        cast(user_id as {{ dbt.type_string() }}) as external_id,
        cast(event_name as {{ dbt.type_string() }}) as event_name,
        occurred_at,
        cast(properties as {{ type_json() }}) as properties
    from events

)

select * from final
