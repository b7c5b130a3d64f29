{#- The weekly growth review's headline numbers, one row per as-of date, each
    with a green / amber / red flag (grey without data) against the guide's
    targets, and next to it the target and band edges it was flagged against,
    as columns named like their dbt vars without `metrics_` (dbt_project.yml,
    "targets and bands"), so the row describes itself and the review draws
    every threshold from it. Incremental by as-of date (a rerun replaces its
    date), so the review can show the change against the row of a week before;
    a row keeps the targets of the run that wrote it.
    - expansion share of new MRR, last complete month: green from
      expansion_share_healthy_pct (25), amber from
      expansion_share_underdeveloped_pct (15), red below (flagged by
      mrr_movements with the same vars); expansion_share_healthy_max_pct (35)
      is the top of the guide's healthy band, drawn on the review's chart;
    - time to upgrade, upgrades of the last 90 days: green when the median is
      within time_to_upgrade_target_days (14), amber within
      time_to_upgrade_amber_max_days (28), red beyond;
    - users at Ready 30+ days without converting, as a share of Ready and
      Overdue users: green below ready_without_conversion_green_below_pct (5),
      amber below ready_without_conversion_amber_below_pct (15), red from it;
    - 90-day upgrade retention, latest complete cohort month (every upgrade of
      the month at least 90 days old; the month after it is still partial):
      green from retention_floor_pct (70), red below;
    - signal-triggered conversion: green from conversion_triggered_target_pct
      (12, the guide's 12-20%), amber above conversion_broadcast_ceiling_pct
      (broadcast's 4%), red at or below;
    - lift against the holdout: green when its 95% interval's low end is above
      lift_ci_low_green_above_pct_points (0), amber when the lift is above
      lift_amber_above_pct_points (0), red otherwise, grey without a holdout. -#}
{{
    config(
        materialized='incremental',
        on_schema_change='append_new_columns',
        **as_of_incremental_config(),
    )
}}

{%- set expansion_healthy_pct = var('metrics_expansion_share_healthy_pct') -%}
{%- set expansion_healthy_max_pct = var('metrics_expansion_share_healthy_max_pct') -%}
{%- set expansion_underdeveloped_pct = var('metrics_expansion_share_underdeveloped_pct') -%}
{%- set target_days = var('metrics_time_to_upgrade_target_days') -%}
{%- set amber_max_days = var('metrics_time_to_upgrade_amber_max_days') -%}
{%- set stuck_green_below_pct = var('metrics_ready_without_conversion_green_below_pct') -%}
{%- set stuck_amber_below_pct = var('metrics_ready_without_conversion_amber_below_pct') -%}
{%- set retention_floor_pct = var('metrics_retention_floor_pct') -%}
{%- set triggered_target_pct = var('metrics_conversion_triggered_target_pct') -%}
{%- set broadcast_ceiling_pct = var('metrics_conversion_broadcast_ceiling_pct') -%}
{%- set lift_ci_low_green_above = var('metrics_lift_ci_low_green_above_pct_points') -%}
{%- set lift_amber_above = var('metrics_lift_amber_above_pct_points') -%}

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
        cast({{ expansion_healthy_pct }} as {{ dbt.type_numeric() }}) as expansion_share_healthy_pct,
        cast({{ expansion_healthy_max_pct }} as {{ dbt.type_numeric() }}) as expansion_share_healthy_max_pct,
        cast({{ expansion_underdeveloped_pct }} as {{ dbt.type_numeric() }}) as expansion_share_underdeveloped_pct,
        round(cast(recent_upgrades.median_days_to_upgrade as {{ type_decimal() }}), 1) as median_days_to_upgrade,
        round(cast(recent_upgrades.p75_days_to_upgrade as {{ type_decimal() }}), 1) as p75_days_to_upgrade,
        round(cast(recent_upgrades.upgrades_within_target_pct as {{ type_decimal() }}), 1) as upgrades_within_target_pct,
        recent_upgrades.upgrades_measured,
        case
            when recent_upgrades.median_days_to_upgrade is null then 'grey'
            when recent_upgrades.median_days_to_upgrade <= {{ target_days }} then 'green'
            when recent_upgrades.median_days_to_upgrade <= {{ amber_max_days }} then 'amber'
            else 'red'
        end as time_to_upgrade_flag,
        cast({{ target_days }} as {{ dbt.type_numeric() }}) as time_to_upgrade_target_days,
        cast({{ amber_max_days }} as {{ dbt.type_numeric() }}) as time_to_upgrade_amber_max_days,
        stuck.ready_without_conversion_users,
        case
            when stuck.ready_or_overdue_users = 0 then 'grey'
            when 100.0 * stuck.ready_without_conversion_users < {{ stuck_green_below_pct }} * stuck.ready_or_overdue_users
                then 'green'
            when 100.0 * stuck.ready_without_conversion_users < {{ stuck_amber_below_pct }} * stuck.ready_or_overdue_users
                then 'amber'
            else 'red'
        end as ready_without_conversion_flag,
        cast({{ stuck_green_below_pct }} as {{ dbt.type_numeric() }}) as ready_without_conversion_green_below_pct,
        cast({{ stuck_amber_below_pct }} as {{ dbt.type_numeric() }}) as ready_without_conversion_amber_below_pct,
        latest_cohort.cohort_month as retention_cohort_month,
        latest_cohort.retention_pct,
        case
            when latest_cohort.retention_pct is null then 'grey'
            when latest_cohort.retention_pct >= {{ retention_floor_pct }} then 'green'
            else 'red'
        end as retention_flag,
        cast({{ retention_floor_pct }} as {{ dbt.type_numeric() }}) as retention_floor_pct,
        lift.treatment_rate_pct,
        lift.holdout_rate_pct,
        lift.lift_pct_points,
        lift.lift_ci_low_pct_points,
        lift.lift_ci_high_pct_points,
        case
            when lift.treatment_rate_pct is null then 'grey'
            when lift.treatment_rate_pct >= {{ triggered_target_pct }} then 'green'
            when lift.treatment_rate_pct > {{ broadcast_ceiling_pct }} then 'amber'
            else 'red'
        end as conversion_flag,
        cast({{ triggered_target_pct }} as {{ dbt.type_numeric() }}) as conversion_triggered_target_pct,
        cast({{ broadcast_ceiling_pct }} as {{ dbt.type_numeric() }}) as conversion_broadcast_ceiling_pct,
        case
            when lift.lift_pct_points is null then 'grey'
            when lift.lift_ci_low_pct_points > {{ lift_ci_low_green_above }} then 'green'
            when lift.lift_pct_points > {{ lift_amber_above }} then 'amber'
            else 'red'
        end as lift_flag,
        cast({{ lift_ci_low_green_above }} as {{ dbt.type_numeric() }}) as lift_ci_low_green_above_pct_points,
        cast({{ lift_amber_above }} as {{ dbt.type_numeric() }}) as lift_amber_above_pct_points,
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
