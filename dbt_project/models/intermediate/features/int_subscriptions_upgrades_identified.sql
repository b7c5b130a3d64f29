{#- Every upgrade (conversion) before the as-of date, one row each: a paid,
    non-trial period that starts on a higher plan rank than the user's previous
    paid period, or a user's first paid period (a trial that converts counts
    when its paid period starts). The one definition of "converted" that
    suppression, the Overdue clock and the metrics share. -#}
with

subscriptions as (

    select
        subscription_id,
        user_id,
        plan_code,
        plan_rank,
        started_at
    from {{ ref('int_subscriptions_validated') }}
    where
        is_valid
        and not is_trial
        and plan_rank > 0
        and started_at < {{ as_of_timestamp() }}

),

sequenced as (

    select
        subscription_id,
        user_id,
        plan_code,
        plan_rank,
        started_at,
        lag(plan_rank) over (
            partition by user_id
            order by started_at asc, subscription_id asc
        ) as previous_plan_rank
    from subscriptions

),

final as (

    select
        subscription_id,
        user_id,
        plan_code,
        plan_rank,
        coalesce(previous_plan_rank, 0) as previous_plan_rank,
        started_at as upgraded_at
    from sequenced
    where plan_rank > coalesce(previous_plan_rank, 0)

)

select * from final
