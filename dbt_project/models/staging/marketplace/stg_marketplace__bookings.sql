with

source as (

    select * from {{ source('marketplace', 'bookings') }}

),

renamed as (

    select
        booking_id,
        client_id,
        worker_id,
        category,
        amount,
        currency,
        status as booking_status,
        booked_at,
        {{ quarantine_columns([
            check_null_key(['booking_id', 'client_id', 'worker_id']),
            check_blank_key(['booking_id', 'client_id', 'worker_id']),
            check_enum('status', source_accepted_values('bookings', 'status')),
            check_non_finite('amount'),
            check_negative('amount'),
            check_missing_timestamp('booked_at'),
            check_implausible_timestamp('booked_at'),
            check_future_timestamp('booked_at'),
        ]) }}

    from source

)

select * from renamed
