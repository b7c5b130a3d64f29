{#- Upsell conversion per trigger type x offer x channel, treatment against the
    holdout. A trigger counts once it is metrics_conversion_window_days old
    (younger ones cannot have converted yet); a user converted when an upgrade
    followed within that window. The channel is the first channel the user was
    shown an offer on (raw offer_exposures, exported back from the messaging
    platforms) within the window; `none` when no exposure came back, `holdout`
    for held-out users. Counts are distinct users. -#}
{%- set window_days = var('metrics_conversion_window_days') -%}

with

triggers as (

    select * from {{ ref('readiness_triggers') }}
    where triggered_at < {{ window_start(window_days) }}

),

holdout as (

    select * from {{ ref('int_users_holdout_assigned') }}

),

upgrades as (

    select * from {{ ref('int_subscriptions_upgrades_identified') }}

),

exposures as (

    select
        user_id,
        channel,
        exposed_at
    from {{ ref('int_offer_exposures_validated') }}
    where is_valid

),

first_exposures as (

    select
        triggers.trigger_id,
        exposures.channel,
        row_number() over (
            partition by triggers.trigger_id
            order by exposures.exposed_at asc, exposures.channel asc
        ) as exposure_rank
    from triggers
    inner join exposures
        on
            triggers.user_id = exposures.user_id
            and triggers.triggered_at <= exposures.exposed_at
            and {{ dbt.dateadd('day', window_days, 'triggers.triggered_at') }} > exposures.exposed_at

),

conversions as (

    select distinct triggers.trigger_id
    from triggers
    inner join upgrades
        on
            triggers.user_id = upgrades.user_id
            and triggers.triggered_at < upgrades.upgraded_at
            and {{ dbt.dateadd('day', window_days, 'triggers.triggered_at') }} >= upgrades.upgraded_at

),

observed as (

    select
        triggers.trigger_id,
        triggers.user_id,
        triggers.trigger_type,
        triggers.offer_code,
        coalesce(holdout.is_holdout, false) as is_holdout,
        first_exposures.channel as first_channel,
        conversions.trigger_id is not null as has_converted
    from triggers
    left join holdout
        on triggers.user_id = holdout.user_id
    left join first_exposures
        on
            triggers.trigger_id = first_exposures.trigger_id
            and first_exposures.exposure_rank = 1
    left join conversions
        on triggers.trigger_id = conversions.trigger_id

),

final as (

    select
        {{ as_of_date_literal() }} as as_of_date,
        trigger_type,
        coalesce(offer_code, 'none') as offer_code,
        case when is_holdout then 'holdout' else coalesce(first_channel, 'none') end as channel,
        case when is_holdout then 'holdout' else 'treatment' end as arm,
        count(distinct user_id) as users_triggered,
        count(distinct case when has_converted then user_id end) as users_converted,
        round(
            100.0 * count(distinct case when has_converted then user_id end) / count(distinct user_id), 2
        ) as conversion_rate_pct
    from observed
    group by 1, 2, 3, 4, 5

)

select * from final
