{#- One row per user per as-of date: the composite readiness score, the tier and
    the reasons. This is the one place where signals become a score and a tier.

    Scored here, in the intermediate layer, so the scores gate validates the
    as-of date before anything is published: readiness_history (and the marts
    and triggers built on it) copies the date only after the gate passed.

    Incremental by as-of date (macros/readiness_history_config.sql): a run
    deletes and rewrites its own date, so rerunning a date replaces it and
    never duplicates it. full_refresh is off:
    the history is the memory behind time-in-tier and Overdue, and a rebuild
    cannot recreate past dates (rerun them with their as_of_date instead).

    Overdue also covers users who stayed at the Ready score or above for
    tier_overdue_after_days_at_ready consecutive days without converting. The
    streak continues from the latest earlier as-of date in this table (a missed
    day does not break it) and restarts at the user's latest upgrade. A date the
    scores gate blocked stays here until it is fixed and rerun; rerun it before
    later dates, as a backfill does. -#}
{{ config(**readiness_history_config()) }}

with

signals as (

    select * from {{ ref('int_readiness_signals_unpivoted') }}

),

plans as (

    select * from {{ ref('int_users_plans_resolved') }}

),

scored as (

    select
        as_of_date,
        user_id,
        role,
        cast(sum(case when is_fired then signal_weight else 0 end) as integer) as readiness_score,
        {{ json_agg(
            json_object({
                'signal': 'signal_name',
                'weight': 'signal_weight',
                'summary': 'signal_summary',
                'values': 'signal_values',
            }, json_keys=['values']),
            order_by=['-1 * signal_weight', 'signal_name'],
            where='is_fired',
        ) }} as readiness_reasons
    from signals
    group by
        as_of_date,
        user_id,
        role

),

{% if is_incremental() %}
previous_as_of as (

    select max(as_of_date) as as_of_date
    from {{ this }}
    where as_of_date < {{ as_of_date_literal() }}

),

previous_run as (

    select
        history.user_id,
        history.readiness_score,
        history.readiness_tier,
        history.tier_entered_on,
        history.ready_streak_started_on
    from {{ this }} as history
    inner join previous_as_of
        on history.as_of_date = previous_as_of.as_of_date

),
{% else %}
previous_run as (

    select
        cast(null as {{ dbt.type_string() }}) as user_id,
        cast(null as integer) as readiness_score,
        cast(null as {{ dbt.type_string() }}) as readiness_tier,
        cast(null as date) as tier_entered_on,
        cast(null as date) as ready_streak_started_on
    where false

),
{% endif %}

streaks as (

    select
        scored.as_of_date,
        scored.user_id,
        scored.role,
        scored.readiness_score,
        scored.readiness_reasons,
        previous_run.readiness_tier as previous_readiness_tier,
        previous_run.tier_entered_on as previous_tier_entered_on,
        case
            when scored.readiness_score < {{ var('tier_ready_min_score') }} then null
            when previous_run.readiness_score >= {{ var('tier_ready_min_score') }}
                then greatest(previous_run.ready_streak_started_on, cast(plans.last_upgraded_at as date))
            else scored.as_of_date
        end as ready_streak_started_on
    from scored
    left join previous_run
        on scored.user_id = previous_run.user_id
    left join plans
        on scored.user_id = plans.user_id

),

tiered as (

    select
        *,
        {{ dbt.datediff('ready_streak_started_on', 'as_of_date', 'day') }} as days_at_ready,
        {{ readiness_tier('readiness_score', dbt.datediff('ready_streak_started_on', 'as_of_date', 'day')) }}
            as readiness_tier
    from streaks

),

final as (

    select
        as_of_date,
        user_id,
        role,
        readiness_score,
        readiness_tier,
        readiness_reasons,
        previous_readiness_tier,
        case
            when readiness_tier = previous_readiness_tier then previous_tier_entered_on
            else as_of_date
        end as tier_entered_on,
        ready_streak_started_on,
        days_at_ready
    from tiered

)

select * from final
