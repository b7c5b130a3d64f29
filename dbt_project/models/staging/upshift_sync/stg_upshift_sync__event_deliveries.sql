{#- Events a destination accepted (ledger status sent), one row per destination
    and event. Empty before the sync's first run created the ledger. -#}
with

{% if load_relation(source('upshift_sync', 'event_ledger')) is not none %}
source as (

    select * from {{ source('upshift_sync', 'event_ledger') }}

),
{% else %}
source as (

    select
        cast(null as {{ dbt.type_string() }}) as destination,
        cast(null as {{ dbt.type_string() }}) as event_id,
        cast(null as {{ dbt.type_string() }}) as user_id,
        cast(null as {{ dbt.type_string() }}) as event_name,
        cast(null as {{ dbt.type_string() }}) as status,
        cast(null as {{ type_timestamptz() }}) as sent_at,
        cast(null as {{ dbt.type_string() }}) as run_id
    where false

),
{% endif %}

renamed as (

    select
        destination,
        event_id,
        user_id,
        event_name,
        sent_at,
        run_id as sync_run_id
    from source
    where status = 'sent'

)

select * from renamed
