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

deduplicated as (

    {{ deduplicated_validation_batch(
        ref('stg_marketplace__profile_views'),
        id_column='profile_view_id',
        timestamp_column='viewed_at',
        row_columns=['profile_view_id', 'worker_id', 'viewer_id', 'viewed_at'],
    ) }}

),

checked as (

    select
        deduplicated.profile_view_id,
        deduplicated.worker_id,
        deduplicated.viewer_id,
        deduplicated.viewed_at,
        {{ validation_partition_date('deduplicated.viewed_at') }} as partition_date,
        -- Staging's order of checks, then the references (macros/validation_batch.sql).
        {{ validation_quarantine('view_id seen more than once', [
            ('worker.user_id is null', 'worker_id is not a known worker'),
            ('deduplicated.viewer_id is not null and viewer.user_id is null', 'viewer_id is not a known user'),
        ]) }}
    from deduplicated
    left join {{ ref('int_users_validated') }} as worker
        on deduplicated.worker_id = worker.user_id
            and worker.is_valid
            and worker.role = 'worker'
    left join {{ ref('int_users_validated') }} as viewer
        on deduplicated.viewer_id = viewer.user_id
            and viewer.is_valid

),

final as (

    select
        *,
        quarantine_reason is null as is_valid
    from checked

)

select * from final
