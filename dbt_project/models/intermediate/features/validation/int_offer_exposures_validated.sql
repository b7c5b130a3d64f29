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

deduplicated as (

    {{ deduplicated_validation_batch(
        ref('stg_marketplace__offer_exposures'),
        id_column='offer_exposure_id',
        timestamp_column='exposed_at',
        row_columns=['offer_exposure_id', 'user_id', 'offer_code', 'channel', 'exposed_at'],
    ) }}

),

checked as (

    select
        deduplicated.offer_exposure_id,
        deduplicated.user_id,
        deduplicated.offer_code,
        deduplicated.channel,
        deduplicated.exposed_at,
        {{ validation_partition_date('deduplicated.exposed_at') }} as partition_date,
        -- Staging's order of checks, then the references (macros/validation_batch.sql).
        {{ validation_quarantine('exposure_id seen more than once', [
            ('exposed_user.user_id is null', 'user_id is not a known user'),
        ]) }}
    from deduplicated
    left join {{ ref('int_users_validated') }} as exposed_user
        on deduplicated.user_id = exposed_user.user_id
            and exposed_user.is_valid

),

final as (

    select
        *,
        quarantine_reason is null as is_valid
    from checked

)

select * from final
