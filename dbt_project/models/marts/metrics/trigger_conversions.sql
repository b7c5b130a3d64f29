{#- One row per readiness trigger old enough to be measured (at least
    metrics_conversion_window_days old: younger ones cannot have converted yet):
    the user, the arm (treatment or holdout), the channel the user was first
    shown an offer on within the window (raw offer_exposures, exported back
    from the messaging platforms; `none` when no exposure came back, `holdout`
    for held-out users), and whether an upgrade followed within the window.
    upsell_conversion and upsell_lift both count distinct users from here, so a
    user with several triggers or channels counts once per group. -#}
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

final as (

    select
        triggers.trigger_id,
        triggers.user_id,
        triggers.trigger_type,
        coalesce(triggers.offer_code, 'none') as offer_code,
        case when coalesce(holdout.is_holdout, false) then 'holdout' else 'treatment' end as arm,
        case
            when coalesce(holdout.is_holdout, false) then 'holdout'
            else coalesce(first_exposures.channel, 'none')
        end as channel,
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

)

select * from final
