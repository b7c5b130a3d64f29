with

source as (

    select * from {{ source('marketplace', 'searches') }}

),

renamed as (

    select
        search_id,
        client_id,
        category,
        searched_at,
        {{ quarantine_columns([
            check_null_key(['search_id', 'client_id']),
            check_blank_key(['search_id', 'client_id']),
            check_missing_timestamp('searched_at'),
            check_implausible_timestamp('searched_at'),
            check_future_timestamp('searched_at'),
        ]) }}

    from source

)

select * from renamed
