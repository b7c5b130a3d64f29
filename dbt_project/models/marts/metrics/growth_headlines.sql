{#- The weekly growth review's headline numbers, one row per as-of date, each
    with a green / amber / red flag against the guide's targets. Incremental by
    as-of date (a rerun replaces its date), so the review can show the change
    against the row of a week before.
    - expansion share of new MRR, last complete month: green from 25%, amber
      from 15%, red below (var metrics_expansion_share_*);
    - time to upgrade, upgrades of the last 90 days: green when the median is
      within 14 days (metrics_time_to_upgrade_target_days), amber within twice
      that, red beyond;
    - users at Ready 30+ days without converting: green under 5% of Ready and
      Overdue users, amber under 15%, red above;
    - 90-day upgrade retention, latest complete cohort month (every upgrade of
      the month at least 90 days old; the month after it is still partial):
      green from 70%, red below;
    - signal-triggered conversion: green from 12% (the guide's 12-20%), amber
      above broadcast's 4%, red at or below;
    - lift against the holdout: green when its 95% interval is above zero,
      amber when the lift is positive, red otherwise, grey without a holdout. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['as_of_date'],
        on_schema_change='append_new_columns',
    )
}}

{%- set target_days = var('metrics_time_to_upgrade_target_days') -%}

with

last_complete_month as (

    select *
    from {{ ref('mrr_movements') }}
    where month_start = {{ dbt.dateadd('month', -1, dbt.date_trunc('month', as_of_date_literal())) }}

),

recent_upgrades as (

    select
        percentile_cont(0.5) within group (order by days_to_upgrade) as median_days_to_upgrade,
        percentile_cont(0.75) within group (order by days_to_upgrade) as p75_days_to_upgrade,
        100.0 * count(case when is_within_target then 1 end) / nullif(count(*), 0) as upgrades_within_target_pct,
        count(*) as upgrades_measured
    from {{ ref('time_to_upgrade') }}
    where upgraded_at >= {{ window_start(90) }}

),

stuck as (

    select
        count(*) as ready_without_conversion_users,
        (
            select count(*) as ready_or_overdue_users
            from {{ ref('readiness_history') }} as history
            where
                history.as_of_date = {{ as_of_date_literal() }}
                and history.readiness_tier in ('Ready', 'Overdue')
        ) as ready_or_overdue_users
    from {{ ref('ready_without_conversion') }}

),

latest_cohort as (

    select
        cohort_month,
        retention_pct
    from {{ ref('upgrade_retention') }}
    where is_complete_cohort
    order by cohort_month desc
    limit 1

),

lift as (

    select * from {{ ref('upsell_lift') }}
    where trigger_type = 'all'

),

gap as (

    select
        count(*) as addressable_clients,
        coalesce(sum(mrr_at_stake), 0) as addressable_mrr
    from {{ ref('addressable_gap') }}

),

final as (

    select
        {{ as_of_date_literal() }} as as_of_date,
        last_complete_month.month_start as expansion_month,
        last_complete_month.expansion_mrr,
        last_complete_month.new_mrr,
        last_complete_month.expansion_share_of_new_mrr_pct,
        last_complete_month.expansion_share_flag,
        round(cast(recent_upgrades.median_days_to_upgrade as numeric), 1) as median_days_to_upgrade,
        round(cast(recent_upgrades.p75_days_to_upgrade as numeric), 1) as p75_days_to_upgrade,
        round(cast(recent_upgrades.upgrades_within_target_pct as numeric), 1) as upgrades_within_target_pct,
        recent_upgrades.upgrades_measured,
        case
            when recent_upgrades.median_days_to_upgrade is null then 'grey'
            when recent_upgrades.median_days_to_upgrade <= {{ target_days }} then 'green'
            when recent_upgrades.median_days_to_upgrade <= {{ 2 * target_days }} then 'amber'
            else 'red'
        end as time_to_upgrade_flag,
        stuck.ready_without_conversion_users,
        case
            when stuck.ready_or_overdue_users = 0 then 'grey'
            when stuck.ready_without_conversion_users < 0.05 * stuck.ready_or_overdue_users then 'green'
            when stuck.ready_without_conversion_users < 0.15 * stuck.ready_or_overdue_users then 'amber'
            else 'red'
        end as ready_without_conversion_flag,
        latest_cohort.cohort_month as retention_cohort_month,
        latest_cohort.retention_pct,
        case
            when latest_cohort.retention_pct is null then 'grey'
            when latest_cohort.retention_pct >= {{ var('metrics_retention_floor_pct') }} then 'green'
            else 'red'
        end as retention_flag,
        lift.treatment_rate_pct,
        lift.holdout_rate_pct,
        lift.lift_pct_points,
        lift.lift_ci_low_pct_points,
        lift.lift_ci_high_pct_points,
        case
            when lift.treatment_rate_pct is null then 'grey'
            when lift.treatment_rate_pct >= 12 then 'green'
            when lift.treatment_rate_pct > 4 then 'amber'
            else 'red'
        end as conversion_flag,
        case
            when lift.lift_pct_points is null then 'grey'
            when lift.lift_ci_low_pct_points > 0 then 'green'
            when lift.lift_pct_points > 0 then 'amber'
            else 'red'
        end as lift_flag,
        gap.addressable_clients,
        gap.addressable_mrr
    from gap
    left join last_complete_month on true
    left join recent_upgrades on true
    left join stuck on true
    left join latest_cohort on true
    left join lift on true

)

select * from final
