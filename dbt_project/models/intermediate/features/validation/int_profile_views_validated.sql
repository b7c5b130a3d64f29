{{ config(
    materialized='incremental',
    indexes=[{'columns': ['profile_view_id']}, {'columns': ['partition_date']}],
    **partition_incremental_config('partition_date'),
) }}

{#- Profile views after the contract checks; worker_id must be a valid worker and a
    non-null viewer_id a valid user. Grain: one raw row. Incremental by
    event date (macros/validation_batch.sql): a run re-validates the batch's raw rows
    and replaces their partitions. A later copy of an id is a duplicate_id, whether
    the earlier copy is in the batch or in a partition an earlier run kept. -#}

with

staged as (

    select * from {{ ref('stg_marketplace__profile_views') }}
    {%- if is_incremental() %}
    where {{ in_validation_batch('viewed_at') }}
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
            partition by staged.profile_view_id
            order by staged.viewed_at nulls last, {{ dbt.hash(row_text(['staged.profile_view_id', 'staged.worker_id', 'staged.viewer_id', 'staged.viewed_at'])) }}
        ) as copy_number
    from staged

),

deduplicated as (

    select
        ranked.*,
        ranked.profile_view_id is not null and (
            ranked.copy_number > 1
            {%- if is_incremental() %}
            or exists (
                select 1
                from {{ this }} as kept
                where kept.profile_view_id = ranked.profile_view_id
                    and {{ before_validation_batch('kept.partition_date') }}
            )
            {%- endif %}
        ) as is_duplicate
    from ranked

),

checked as (

    select
        deduplicated.profile_view_id,
        deduplicated.worker_id,
        deduplicated.viewer_id,
        deduplicated.viewed_at,
        {{ validation_partition_date('deduplicated.viewed_at') }} as partition_date,
        -- Staging's order of checks: a missing or blank key first, then the duplicate
        -- check, then the rest of staging's checks, then the references.
        case
            when deduplicated.quarantine_reason in ('null_key', 'blank_key') then deduplicated.quarantine_reason
            when deduplicated.is_duplicate then 'duplicate_id'
            when deduplicated.quarantine_reason is not null then deduplicated.quarantine_reason
            when worker.user_id is null then 'unknown_user'
            when deduplicated.viewer_id is not null and viewer.user_id is null then 'unknown_user'
        end as quarantine_reason,
        case
            when deduplicated.quarantine_reason in ('null_key', 'blank_key') then deduplicated.quarantine_detail
            when deduplicated.is_duplicate then 'view_id seen more than once'
            when deduplicated.quarantine_reason is not null then deduplicated.quarantine_detail
            when worker.user_id is null then 'worker_id is not a known worker'
            when deduplicated.viewer_id is not null and viewer.user_id is null then 'viewer_id is not a known user'
        end as quarantine_detail
    from deduplicated
    left join valid_users as worker
        on deduplicated.worker_id = worker.user_id
            and worker.role = 'worker'
    left join valid_users as viewer
        on deduplicated.viewer_id = viewer.user_id

),

final as (

    select
        *,
        quarantine_reason is null as is_valid
    from checked

)

select * from final
