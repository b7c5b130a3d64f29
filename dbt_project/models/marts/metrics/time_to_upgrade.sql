{#- Time from readiness to upgrade, one row per upgrade that had a readiness
    trigger before it: the days from the first trigger of the episode (the
    earliest trigger after the user's previous upgrade, any type, including
    entering Ready) to the upgrade. Users who converted before any trigger are
    not here (nothing to measure from). -#}
with

upgrades as (

    select
        subscription_id,
        user_id,
        plan_code,
        upgraded_at,
        lag(upgraded_at) over (partition by user_id order by upgraded_at asc, subscription_id asc)
            as previous_upgraded_at
    from {{ ref('int_subscriptions_upgrades_identified') }}

),

triggers as (

    select
        user_id,
        role,
        trigger_type,
        triggered_at
    from {{ ref('readiness_triggers') }}

),

episodes as (

    select
        upgrades.subscription_id,
        upgrades.user_id,
        upgrades.plan_code,
        upgrades.upgraded_at,
        min(triggers.triggered_at) as first_triggered_at,
        min(triggers.role) as role
    from upgrades
    inner join triggers
        on
            upgrades.user_id = triggers.user_id
            and upgrades.upgraded_at > triggers.triggered_at
            and (upgrades.previous_upgraded_at is null or upgrades.previous_upgraded_at < triggers.triggered_at)
    group by
        upgrades.subscription_id,
        upgrades.user_id,
        upgrades.plan_code,
        upgrades.upgraded_at

),

final as (

    select
        subscription_id,
        user_id,
        role,
        plan_code,
        first_triggered_at,
        upgraded_at,
        round(cast({{ dbt.datediff('first_triggered_at', 'upgraded_at', 'second') }} as {{ type_decimal() }}) / 86400, 1)
            as days_to_upgrade,
        {{ dbt.datediff('first_triggered_at', 'upgraded_at', 'second') }}
        <= {{ var('metrics_time_to_upgrade_target_days') }} * 86400 as is_within_target,
        {{ as_of_date_literal() }} as as_of_date
    from episodes

)

select * from final
