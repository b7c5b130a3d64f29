{{ config(
    materialized='incremental',
    indexes=[{'columns': ['contact_id']}, {'columns': ['partition_date']}],
    **partition_incremental_config('partition_date'),
) }}

{#- Contacts after the contract checks; worker_id must be a valid worker and client_id a
    valid client. Grain: one raw row. Incremental by
    event date (macros/validation_batch.sql): a run re-validates the batch's raw rows
    and replaces their partitions. A later copy of an id is a duplicate_id, whether
    the earlier copy is in the batch or in a partition an earlier run kept. -#}

with

deduplicated as (

    {{ deduplicated_validation_batch(
        ref('stg_marketplace__contacts'),
        id_column='contact_id',
        timestamp_column='contacted_at',
        row_columns=['contact_id', 'worker_id', 'client_id', 'contacted_at'],
    ) }}

),

checked as (

    select
        deduplicated.contact_id,
        deduplicated.worker_id,
        deduplicated.client_id,
        deduplicated.contacted_at,
        {{ validation_partition_date('deduplicated.contacted_at') }} as partition_date,
        -- Staging's order of checks, then the references (macros/validation_batch.sql).
        {{ validation_quarantine('contact_id seen more than once', [
            ('worker.user_id is null', 'worker_id is not a known worker'),
            ('client.user_id is null', 'client_id is not a known client'),
        ]) }}
    from deduplicated
    left join {{ ref('int_users_validated') }} as worker
        on deduplicated.worker_id = worker.user_id
            and worker.is_valid
            and worker.role = 'worker'
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
