with

source as (

    select * from {{ source('marketplace', 'profile_views') }}

),

renamed as (

    select
        view_id as profile_view_id,
        worker_id,
        viewer_id,
        viewed_at,
        {{ quarantine_columns([
            check_null_key(['view_id', 'worker_id']),
            check_blank_key(['view_id', 'worker_id']),
            check_missing_timestamp('viewed_at'),
            check_implausible_timestamp('viewed_at'),
            check_future_timestamp('viewed_at'),
        ]) }}

    from source

)

select * from renamed
