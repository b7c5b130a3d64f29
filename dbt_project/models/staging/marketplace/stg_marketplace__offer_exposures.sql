with

source as (

    select * from {{ source('marketplace', 'offer_exposures') }}

),

renamed as (

    select
        exposure_id as offer_exposure_id,
        user_id,
        offer_code,
        channel,
        exposed_at,
        {{ quarantine_columns([
            check_null_key(['exposure_id', 'user_id']),
            check_blank_key(['exposure_id', 'user_id']),
            check_enum('channel', source_accepted_values('offer_exposures', 'channel')),
            check_missing_timestamp('exposed_at'),
            check_implausible_timestamp('exposed_at'),
            check_future_timestamp('exposed_at'),
        ]) }}

    from source

)

select * from renamed
