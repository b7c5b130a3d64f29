{{ config(
    materialized='incremental',
    indexes=[{'columns': ['offer_exposure_id']}, {'columns': ['partition_date']}],
    **partition_incremental_config('partition_date'),
) }}

{#- Offer exposures after the contract checks; user_id must be a valid user. Grain: one raw row. Incremental by
    event date (macros/validation_batch.sql): a run re-validates the batch's raw rows
    and replaces their partitions. A later copy of an id is a duplicate_id, whether
    the earlier copy is in the batch or in a partition an earlier run kept. -#}

with

staged as (

    select * from {{ ref('stg_marketplace__offer_exposures') }}
    {%- if is_incremental() %}
    where {{ in_validation_batch('exposed_at') }}
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
            partition by staged.offer_exposure_id
            order by staged.exposed_at nulls last, {{ dbt.hash(row_text(['staged.offer_exposure_id', 'staged.user_id', 'staged.offer_code', 'staged.channel', 'staged.exposed_at'])) }}
        ) as copy_number
    from staged

),

deduplicated as (

    select
        ranked.*,
        ranked.offer_exposure_id is not null and (
            ranked.copy_number > 1
            {%- if is_incremental() %}
            or exists (
                select 1
                from {{ this }} as kept
                where kept.offer_exposure_id = ranked.offer_exposure_id
                    and {{ before_validation_batch('kept.partition_date') }}
            )
            {%- endif %}
        ) as is_duplicate
    from ranked

),

checked as (

    select
        deduplicated.offer_exposure_id,
        deduplicated.user_id,
        deduplicated.offer_code,
        deduplicated.channel,
        deduplicated.exposed_at,
        {{ validation_partition_date('deduplicated.exposed_at') }} as partition_date,
        -- Staging's order of checks: a missing or blank key first, then the duplicate
        -- check, then the rest of staging's checks, then the references.
        case
            when deduplicated.quarantine_reason in ('null_key', 'blank_key') then deduplicated.quarantine_reason
            when deduplicated.is_duplicate then 'duplicate_id'
            when deduplicated.quarantine_reason is not null then deduplicated.quarantine_reason
            when exposed_user.user_id is null then 'unknown_user'
        end as quarantine_reason,
        case
            when deduplicated.quarantine_reason in ('null_key', 'blank_key') then deduplicated.quarantine_detail
            when deduplicated.is_duplicate then 'exposure_id seen more than once'
            when deduplicated.quarantine_reason is not null then deduplicated.quarantine_detail
            when exposed_user.user_id is null then 'user_id is not a known user'
        end as quarantine_detail
    from deduplicated
    left join valid_users as exposed_user
        on deduplicated.user_id = exposed_user.user_id

),

final as (

    select
        *,
        quarantine_reason is null as is_valid
    from checked

)

select * from final
