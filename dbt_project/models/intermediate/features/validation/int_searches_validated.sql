{{ config(
    materialized='incremental',
    indexes=[{'columns': ['search_id']}, {'columns': ['partition_date']}],
    **partition_incremental_config('partition_date'),
) }}

{#- Searches after the contract checks; client_id must be a valid client. Grain: one raw row. Incremental by
    event date (macros/validation_batch.sql): a run re-validates the batch's raw rows
    and replaces their partitions. A later copy of an id is a duplicate_id, whether
    the earlier copy is in the batch or in a partition an earlier run kept. -#}

with

deduplicated as (

    {{ deduplicated_validation_batch(
        ref('stg_marketplace__searches'),
        id_column='search_id',
        timestamp_column='searched_at',
        row_columns=['search_id', 'client_id', 'category', 'searched_at'],
    ) }}

),

checked as (

    select
        deduplicated.search_id,
        deduplicated.client_id,
        deduplicated.category,
        deduplicated.searched_at,
        {{ validation_partition_date('deduplicated.searched_at') }} as partition_date,
        -- Staging's order of checks, then the references (macros/validation_batch.sql).
        {{ validation_quarantine('search_id seen more than once', [
            ('client.user_id is null', 'client_id is not a known client'),
        ]) }}
    from deduplicated
    left join {{ ref('int_users_validated') }} as client
        on deduplicated.client_id = client.user_id
            and client.is_valid
            and client.role = 'client'

),

final as (

    select
        *,
        quarantine_reason is null as is_valid
    from checked

)

select * from final
