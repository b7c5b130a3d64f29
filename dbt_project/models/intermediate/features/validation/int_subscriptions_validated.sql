{#- Subscriptions after the contract checks (staging), the user reference check (the
    subscriber must be a valid user) and the plan check: the plan must be in the plan
    catalog and belong to the subscriber's side of the marketplace. A small table of
    plan periods whose rows change (ended_at), so it is rebuilt whole every run. -#}
with

staged as (

    select * from {{ ref('stg_marketplace__subscriptions') }}

),

plans as (

    select * from {{ ref('plan_catalog') }}

),

users as (

    select
        user_id,
        role
    from {{ ref('int_users_validated') }}
    where is_valid

),

checked as (

    select
        staged.subscription_id,
        staged.user_id,
        staged.plan_code,
        plans.plan_rank,
        staged.mrr,
        staged.is_trial,
        staged.started_at,
        staged.ended_at,
        case
            when staged.quarantine_reason is not null then staged.quarantine_reason
            when users.user_id is null then 'unknown_user'
            when plans.plan_code is null or plans.role != users.role then 'unknown_plan'
        end as quarantine_reason,
        case
            when staged.quarantine_reason is not null then staged.quarantine_detail
            when users.user_id is null then 'user_id is not a known user'
            when plans.plan_code is null then concat('plan_code=', staged.plan_code, ' not in plan_catalog')
            when plans.role != users.role then concat('plan_code=', staged.plan_code, ' is a ', plans.role, ' plan')
        end as quarantine_detail
    from staged
    left join plans
        on staged.plan_code = plans.plan_code
    left join users
        on staged.user_id = users.user_id

),

final as (

    select
        *,
        quarantine_reason is null as is_valid
    from checked

)

select * from final
