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

staged as (

    select * from {{ ref('stg_marketplace__bookings') }}
    {%- if is_incremental() %}
    where {{ in_validation_batch('booked_at') }}
    {%- endif %}

),

valid_users as (

    select
        user_id,
        role
    from {{ ref('int_users_validated') }}
    where is_valid

),

ranked as (

    select
        staged.*,
        row_number() over (
            partition by staged.booking_id
            order by staged.booked_at nulls last, {{ dbt.hash(row_text(['staged.booking_id', 'staged.client_id', 'staged.worker_id', 'staged.category', 'staged.amount', 'staged.currency', 'staged.booking_status', 'staged.booked_at'])) }}
        ) as copy_number
    from staged

),

deduplicated as (

    select
        ranked.*,
        ranked.booking_id is not null and (
            ranked.copy_number > 1
            {%- if is_incremental() %}
            or exists (
                select 1
                from {{ this }} as kept
                where kept.booking_id = ranked.booking_id
                    and {{ before_validation_batch('kept.partition_date') }}
            )
            {%- endif %}
        ) as is_duplicate
    from ranked

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
        -- Staging's order of checks: a missing or blank key first, then the duplicate
        -- check, then the rest of staging's checks, then the references.
        case
            when deduplicated.quarantine_reason in ('null_key', 'blank_key') then deduplicated.quarantine_reason
            when deduplicated.is_duplicate then 'duplicate_id'
            when deduplicated.quarantine_reason is not null then deduplicated.quarantine_reason
            when client.user_id is null then 'unknown_user'
            when worker.user_id is null then 'unknown_user'
        end as quarantine_reason,
        case
            when deduplicated.quarantine_reason in ('null_key', 'blank_key') then deduplicated.quarantine_detail
            when deduplicated.is_duplicate then 'booking_id seen more than once'
            when deduplicated.quarantine_reason is not null then deduplicated.quarantine_detail
            when client.user_id is null then 'client_id is not a known client'
            when worker.user_id is null then 'worker_id is not a known worker'
        end as quarantine_detail
    from deduplicated
    left join valid_users as client
        on deduplicated.client_id = client.user_id
            and client.role = 'client'
    left join valid_users as worker
        on deduplicated.worker_id = worker.user_id
            and worker.role = 'worker'

),

final as (

    select
        *,
        quarantine_reason is null as is_valid
    from checked

)

select * from final
