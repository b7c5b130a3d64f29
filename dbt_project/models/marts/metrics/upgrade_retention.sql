{#- Upgrade retention at metrics_retention_days (90) days, by cohort month of the
    upgrade: of the users who upgraded, the share still on the upgraded plan or
    a higher-ranked one (paid, not a trial) that many days later. A period is
    held at that moment when started_at <= measured_at < ended_at (the same
    half-open rule as mrr_movements' months), so a move to a higher plan exactly
    on day 90 is retained and a move to a lower one exactly then is not. Only
    upgrades at least that old count (an upgrade exactly 90 days before the
    as-of date does). A cohort month is complete once its last possible upgrade
    is that old (is_complete_cohort); the headlines report the latest complete
    one. Below metrics_retention_floor_pct the flag is red: the offer oversold
    what the tier delivers. -#}
{%- set retention_days = var('metrics_retention_days') -%}

with

upgrades as (

    select
        subscription_id,
        user_id,
        plan_rank,
        upgraded_at,
        {{ dbt.dateadd('day', retention_days, 'upgraded_at') }} as measured_at
    from {{ ref('int_subscriptions_upgrades_identified') }}
    where upgraded_at <= {{ window_start(retention_days) }}

),

paid_periods as (

    select
        user_id,
        plan_rank,
        started_at,
        ended_at
    from {{ ref('int_subscriptions_validated') }}
    where
        is_valid
        and not is_trial
        and started_at < {{ as_of_timestamp() }}

),

measured as (

    select
        upgrades.subscription_id,
        upgrades.user_id,
        {{ dbt.date_trunc('month', 'upgrades.upgraded_at') }} as cohort_month,
        count(paid_periods.user_id) > 0 as is_retained
    from upgrades
    left join paid_periods
        on
            upgrades.user_id = paid_periods.user_id
            and upgrades.plan_rank <= paid_periods.plan_rank
            and upgrades.measured_at >= paid_periods.started_at
            and (paid_periods.ended_at is null or upgrades.measured_at < paid_periods.ended_at)
    group by
        upgrades.subscription_id,
        upgrades.user_id,
        upgrades.upgraded_at

),

final as (

    select
        cast(cohort_month as date) as cohort_month,
        {{ as_of_date_literal() }} as as_of_date,
        {{ dbt.dateadd('month', 1, 'cohort_month') }} <= {{ window_start(retention_days) }} as is_complete_cohort,
        count(*) as upgrades,
        count(case when is_retained then 1 end) as retained,
        round(100.0 * count(case when is_retained then 1 end) / count(*), 1) as retention_pct,
        case
            when 100.0 * count(case when is_retained then 1 end) / count(*) >= {{ var('metrics_retention_floor_pct') }}
                then 'green'
            else 'red'
        end as retention_flag
    from measured
    group by cohort_month

)

select * from final
