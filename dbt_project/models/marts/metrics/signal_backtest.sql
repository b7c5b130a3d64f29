{#- Which signals predict conversion: every readiness_history row at least
    metrics_conversion_window_days old is an observation (a user on a date);
    it converted when an upgrade followed within the window. Per side and
    signal, the conversion rate of observations where the signal fired against
    those where it did not, and the lift; the `tier:` rows show how each tier
    converts. Evidence for tuning weights and thresholds. -#}
{%- set window_days = var('metrics_conversion_window_days') -%}

with

past_history as (

    select
        as_of_date,
        user_id,
        role,
        readiness_tier,
        readiness_reasons,
        cast(as_of_date as {{ type_timestamptz() }}) as observed_at
    from {{ ref('readiness_history') }}
    where as_of_date <= {{ dbt.dateadd('day', -1 * window_days, as_of_date_literal()) }}

),

converted as (

    select distinct
        past_history.as_of_date,
        past_history.user_id
    from past_history
    inner join {{ ref('int_subscriptions_upgrades_identified') }} as upgrades
        on
            past_history.user_id = upgrades.user_id
            and past_history.observed_at <= upgrades.upgraded_at
            and {{ dbt.dateadd('day', window_days, 'past_history.observed_at') }} > upgrades.upgraded_at

),

observations as (

    select
        past_history.as_of_date,
        past_history.user_id,
        past_history.role,
        past_history.readiness_tier,
        past_history.readiness_reasons,
        converted.user_id is not null as has_converted
    from past_history
    left join converted
        on
            past_history.as_of_date = converted.as_of_date
            and past_history.user_id = converted.user_id

),

signals as (

    {% for role, signal in readiness_signal_list() %}
    select
        '{{ role }}' as role,
        '{{ signal }}' as signal_name
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

by_signal as (

    select
        signals.role,
        signals.signal_name as segment,
        {{ json_array_has('observations.readiness_reasons', 'signal', 'signals.signal_name') }}
            as is_fired,
        observations.has_converted
    from observations
    inner join signals
        on observations.role = signals.role

),

signal_rates as (

    select
        role,
        segment,
        count(case when is_fired then 1 end) as fired_observations,
        count(case when is_fired and has_converted then 1 end) as fired_conversions,
        count(case when not is_fired then 1 end) as not_fired_observations,
        count(case when not is_fired and has_converted then 1 end) as not_fired_conversions
    from by_signal
    group by
        role,
        segment

),

tier_rates as (

    select
        role,
        'tier:' || readiness_tier as segment,
        count(*) as fired_observations,
        count(case when has_converted then 1 end) as fired_conversions,
        cast(null as bigint) as not_fired_observations,
        cast(null as bigint) as not_fired_conversions
    from observations
    group by
        role,
        readiness_tier

),

unioned as (

    select * from signal_rates
    union all
    select * from tier_rates

),

final as (

    select
        {{ as_of_date_literal() }} as as_of_date,
        role,
        segment,
        fired_observations,
        fired_conversions,
        round(100.0 * fired_conversions / nullif(fired_observations, 0), 2) as fired_conversion_rate_pct,
        not_fired_observations,
        not_fired_conversions,
        round(100.0 * not_fired_conversions / nullif(not_fired_observations, 0), 2) as not_fired_conversion_rate_pct,
        round(
            100.0 * fired_conversions / nullif(fired_observations, 0)
            - 100.0 * not_fired_conversions / nullif(not_fired_observations, 0),
            2
        ) as lift_pct_points
    from unioned

)

select * from final
