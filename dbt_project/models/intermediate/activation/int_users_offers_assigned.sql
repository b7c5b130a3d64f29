{#- The offer each user's tier earns for the as-of date (seed readiness_offers,
    edited by the growth team), and whether it is withheld. A user is never
    offered what they already have: holding the offer's target plan or a
    higher-ranked one (a trial included) suppresses it, and so does any upgrade
    in the last offer_suppress_days_after_conversion days. Cold earns no offer. -#}
with

scored as (

    select * from {{ ref('int_users_readiness_scored') }}
    where as_of_date = {{ as_of_date_literal() }}

),

plans as (

    select * from {{ ref('int_users_plans_resolved') }}

),

tier_offers as (

    select
        offers.offer_code,
        offers.role,
        offers.readiness_tier,
        target_plans.plan_rank as target_plan_rank
    from {{ ref('readiness_offers') }} as offers
    inner join {{ ref('plan_catalog') }} as target_plans
        on offers.target_plan_code = target_plans.plan_code
    where offers.readiness_tier is not null

),

matched as (

    select
        scored.user_id,
        scored.role,
        scored.readiness_tier,
        tier_offers.offer_code as matched_offer_code,
        case
            when tier_offers.offer_code is null then null
            when plans.current_plan_rank >= tier_offers.target_plan_rank then 'holds_offered_plan_or_better'
            when plans.last_upgraded_at >= {{ window_start(var('offer_suppress_days_after_conversion')) }}
                then 'converted_recently'
        end as suppression_reason
    from scored
    left join tier_offers
        on
            scored.role = tier_offers.role
            and scored.readiness_tier = tier_offers.readiness_tier
    left join plans
        on scored.user_id = plans.user_id

),

final as (

    select
        user_id,
        role,
        {{ as_of_date_literal() }} as as_of_date,
        matched_offer_code,
        case when suppression_reason is null then matched_offer_code end as offer_code,
        suppression_reason is not null as is_suppressed,
        suppression_reason
    from matched

)

select * from final
