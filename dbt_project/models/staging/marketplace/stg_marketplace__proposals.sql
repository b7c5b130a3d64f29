with

source as (

    select * from {{ source('marketplace', 'proposals') }}

),

renamed as (

    select
        proposal_id,
        worker_id,
        job_id,
        category,
        status as proposal_status,
        submitted_at,
        {{ quarantine_columns([
            check_null_key(['proposal_id', 'worker_id']),
            check_blank_key(['proposal_id', 'worker_id']),
            check_enum('status', source_accepted_values('proposals', 'status')),
            check_missing_timestamp('submitted_at'),
            check_implausible_timestamp('submitted_at'),
            check_future_timestamp('submitted_at'),
        ]) }}

    from source

)

select * from renamed
