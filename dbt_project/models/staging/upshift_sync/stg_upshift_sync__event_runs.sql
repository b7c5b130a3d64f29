{#- The sync runs of the events step that really sent (no dry runs), per
    destination, with the as-of date each synced. Empty before the sync's first
    run created its log. -#}
with

{% if load_relation(source('upshift_sync', 'sync_log')) is not none %}
source as (

    select * from {{ source('upshift_sync', 'sync_log') }}

),
{% else %}
source as (

    select
        cast(null as {{ dbt.type_string() }}) as run_id,
        cast(null as {{ dbt.type_string() }}) as step,
        cast(null as {{ dbt.type_string() }}) as destination,
        cast(null as date) as as_of_date,
        cast(null as boolean) as dry_run
    where false

),
{% endif %}

renamed as (

    select
        run_id as sync_run_id,
        destination,
        as_of_date as synced_as_of_date
    from source
    where
        step = 'events'
        and not dry_run

)

select * from renamed
