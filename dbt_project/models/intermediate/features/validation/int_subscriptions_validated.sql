{#- Subscriptions add a plan check to the user reference check: the plan must be
    in the plan catalog and belong to the subscriber's side of the marketplace. -#}
with

referenced as (

    {{ validate_references(
        'stg_marketplace__subscriptions',
        columns=['subscription_id', 'user_id', 'plan_code', 'mrr', 'is_trial', 'started_at', 'ended_at'],
        references=[{'column': 'user_id', 'role': none}],
    ) | indent(4) }}

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
        referenced.subscription_id,
        referenced.user_id,
        referenced.plan_code,
        plans.plan_rank,
        referenced.mrr,
        referenced.is_trial,
        referenced.started_at,
        referenced.ended_at,
        case
            when referenced.quarantine_reason is not null then referenced.quarantine_reason
            when plans.plan_code is null or plans.role != users.role then 'unknown_plan'
        end as quarantine_reason,
        case
            when referenced.quarantine_reason is not null then referenced.quarantine_detail
            when plans.plan_code is null then concat('plan_code=', referenced.plan_code, ' not in plan_catalog')
            when plans.role != users.role then concat('plan_code=', referenced.plan_code, ' is a ', plans.role, ' plan')
        end as quarantine_detail
    from referenced
    left join plans
        on referenced.plan_code = plans.plan_code
    left join users
        on referenced.user_id = users.user_id

),

final as (

    select
        *,
        quarantine_reason is null as is_valid
    from checked

)

select * from final
