with

source as (

    select * from {{ source('marketplace', 'contacts') }}

),

renamed as (

    select
        contact_id,
        worker_id,
        client_id,
        contacted_at,
        {{ quarantine_columns([
            check_null_key(['contact_id', 'worker_id', 'client_id']),
            check_blank_key(['contact_id', 'worker_id', 'client_id']),
            check_missing_timestamp('contacted_at'),
            check_implausible_timestamp('contacted_at'),
            check_future_timestamp('contacted_at'),
        ]) }}

    from source

)

select * from renamed
