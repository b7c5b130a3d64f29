with

source as (

    select * from {{ source('marketplace', 'users') }}

),

renamed as (

    select
        user_id,
        role,
        email,
        phone,
        country,
        created_at,
        {{ quarantine_columns([
            check_null_key(['user_id']),
            check_blank_key(['user_id']),
            check_duplicate_id('user_id', 'created_at', ['user_id', 'role', 'email', 'phone', 'country', 'created_at']),
            check_enum('role', source_accepted_values('users', 'role')),
            check_missing_timestamp('created_at'),
            check_implausible_timestamp('created_at'),
            check_future_timestamp('created_at'),
        ]) }}

    from source

)

select * from renamed
