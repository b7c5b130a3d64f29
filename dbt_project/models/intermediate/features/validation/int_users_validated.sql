{{ config(indexes=[{'columns': ['user_id']}]) }}

with

staged as (

    select * from {{ ref('stg_marketplace__users') }}

),

final as (

    select
        *,
        quarantine_reason is null as is_valid
    from staged

)

select * from final
