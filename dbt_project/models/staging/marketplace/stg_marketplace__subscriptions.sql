with

source as (

    select * from {{ source('marketplace', 'subscriptions') }}

),

renamed as (

    select
        subscription_id,
        user_id,
        plan_code,
        mrr,
        is_trial,
        started_at,
        ended_at,
        {{ quarantine_columns([
            check_null_key(['subscription_id', 'user_id', 'plan_code']),
            check_blank_key(['subscription_id', 'user_id', 'plan_code']),
            check_duplicate_id('subscription_id', 'started_at', ['subscription_id', 'user_id', 'plan_code', 'mrr', 'is_trial', 'started_at', 'ended_at']),
            check_non_finite('mrr'),
            check_negative('mrr'),
            check_missing_timestamp('started_at'),
            check_implausible_timestamp('started_at'),
            check_future_timestamp('started_at'),
            {
                'reason': 'invalid_period',
                'when': '(ended_at < started_at)',
                'detail': "'ended_at before started_at'",
            },
        ]) }}

    from source

)

select * from renamed
