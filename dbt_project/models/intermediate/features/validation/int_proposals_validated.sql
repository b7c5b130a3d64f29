{{ config(
    materialized='incremental',
    indexes=[{'columns': ['proposal_id']}, {'columns': ['partition_date']}],
    **partition_incremental_config('partition_date'),
) }}

{#- Proposals after the contract checks; worker_id must be a valid worker. Grain: one raw row. Incremental by
    event date (macros/validation_batch.sql): a run re-validates the batch's raw rows
    and replaces their partitions. A later copy of an id is a duplicate_id, whether
    the earlier copy is in the batch or in a partition an earlier run kept. -#}

with

deduplicated as (

    {{ deduplicated_validation_batch(
        ref('stg_marketplace__proposals'),
        id_column='proposal_id',
        timestamp_column='submitted_at',
        row_columns=['proposal_id', 'worker_id', 'job_id', 'category', 'proposal_status', 'submitted_at'],
    ) }}

),

checked as (

    select
        deduplicated.proposal_id,
        deduplicated.worker_id,
        deduplicated.job_id,
        deduplicated.category,
        deduplicated.proposal_status,
        deduplicated.submitted_at,
        {{ validation_partition_date('deduplicated.submitted_at') }} as partition_date,
        -- Staging's order of checks, then the references (macros/validation_batch.sql).
        {{ validation_quarantine('proposal_id seen more than once', [
            ('worker.user_id is null', 'worker_id is not a known worker'),
        ]) }}
    from deduplicated
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
