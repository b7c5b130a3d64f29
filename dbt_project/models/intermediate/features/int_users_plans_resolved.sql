{#- Each valid user's plan position as of the as-of date: the highest-ranked
    plan they hold (trials included: a user trying a plan holds it), and their
    most recent upgrade (int_subscriptions_upgrades_identified), which is what
    suppresses offers and resets the Overdue clock. -#}
with

users as (

    select
        user_id,
        role
    from {{ ref('int_users_validated') }}
    where
        is_valid
        and created_at < {{ as_of_timestamp() }}

),

subscriptions as (

    select
        subscription_id,
        user_id,
        plan_code,
        plan_rank,
        is_trial,
        started_at,
        ended_at
    from {{ ref('int_subscriptions_validated') }}
    where
        is_valid
        and started_at < {{ as_of_timestamp() }}

),

active_plans as (

    select
        user_id,
        plan_code,
        plan_rank,
        is_trial,
        row_number() over (
            partition by user_id
            order by plan_rank desc, is_trial asc, started_at desc, subscription_id asc
        ) as holding_rank
    from subscriptions
    where ended_at is null or ended_at > {{ as_of_timestamp() }}

),

upgrades as (

    select
        user_id,
        plan_code,
        upgraded_at as started_at,
        row_number() over (
            partition by user_id
            order by upgraded_at desc, plan_code asc
        ) as recency_rank
    from {{ ref('int_subscriptions_upgrades_identified') }}

),

free_plans as (

    select
        role,
        plan_code
    from {{ ref('plan_catalog') }}
    where plan_rank = 0

),

final as (

    select
        users.user_id,
        users.role,
        {{ as_of_date_literal() }} as as_of_date,
        coalesce(active_plans.plan_code, free_plans.plan_code) as current_plan_code,
        coalesce(active_plans.plan_rank, 0) as current_plan_rank,
        coalesce(active_plans.is_trial, false) as is_on_trial,
        upgrades.user_id is not null as has_upgraded,
        upgrades.plan_code as last_upgraded_plan_code,
        upgrades.started_at as last_upgraded_at
    from users
    left join active_plans
        on
            users.user_id = active_plans.user_id
            and active_plans.holding_rank = 1
    left join upgrades
        on
            users.user_id = upgrades.user_id
            and upgrades.recency_rank = 1
    left join free_plans
        on users.role = free_plans.role

)

select * from final
