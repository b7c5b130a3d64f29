{{ config(
    materialized='incremental',
    indexes=[{'columns': ['booking_id']}, {'columns': ['partition_date']}],
    **partition_incremental_config('partition_date'),
) }}

{#- Bookings after the contract checks and the reference checks: client_id must be a valid
    client and worker_id a valid worker. Grain: one raw row. Incremental by
    event date (macros/validation_batch.sql): a run re-validates the batch's raw rows
    and replaces their partitions. A later copy of an id is a duplicate_id, whether
    the earlier copy is in the batch or in a partition an earlier run kept. -#}

with

deduplicated as (

    {{ deduplicated_validation_batch(
        ref('stg_marketplace__bookings'),
        id_column='booking_id',
        timestamp_column='booked_at',
        row_columns=['booking_id', 'client_id', 'worker_id', 'category', 'amount', 'currency', 'booking_status', 'booked_at'],
    ) }}

),

checked as (

    select
        deduplicated.booking_id,
        deduplicated.client_id,
        deduplicated.worker_id,
        deduplicated.category,
        deduplicated.amount,
        deduplicated.currency,
        deduplicated.booking_status,
        deduplicated.booked_at,
        {{ validation_partition_date('deduplicated.booked_at') }} as partition_date,
        -- Staging's order of checks, then the references (macros/validation_batch.sql).
        {{ validation_quarantine('booking_id seen more than once', [
            ('client.user_id is null', 'client_id is not a known client'),
            ('worker.user_id is null', 'worker_id is not a known worker'),
        ]) }}
    from deduplicated
    left join {{ ref('int_users_validated') }} as client
        on deduplicated.client_id = client.user_id
            and client.is_valid
            and client.role = 'client'
    left join {{ ref('int_users_validated') }} as worker
        on deduplicated.worker_id = worker.user_id
            and worker.is_valid
            and worker.role = 'worker'

),

final as (

    select
        *,
        quarantine_reason is null as is_valid
    from checked

)

select * from final
