{#- The guide's "your next step": active clients with
    client_spend_frequency_min_bookings+ completed bookings in the last
    client_spend_frequency_window_days days who were never presented an upgrade
    offer (no exposure in raw offer_exposures before the as-of date), one row
    each, with the MRR at stake: the monthly price of the plan the Ready client
    offer sells (plan catalog) minus what the client pays for the plan held now.
    Clients who already pay that much or more (they hold that plan or the top
    plan) have no MRR at stake and are not addressable: they are not listed, so
    the headline does not count them. -#}
with

clients as (

    select * from {{ ref('int_clients_signals_evaluated') }}
    where has_spend_frequency_signal

),

exposed as (

    select distinct user_id
    from {{ ref('int_offer_exposures_validated') }}
    where
        is_valid
        and exposed_at < {{ as_of_timestamp() }}

),

plans as (

    select * from {{ ref('int_users_plans_resolved') }}

),

catalog as (

    select * from {{ ref('plan_catalog') }}

),

ready_offer_plan as (

    select catalog.monthly_price as target_monthly_price
    from {{ ref('readiness_offers') }} as offers
    inner join catalog
        on offers.target_plan_code = catalog.plan_code
    where
        offers.role = 'client'
        and offers.readiness_tier = 'Ready'

),

final as (

    select
        clients.client_id as user_id,
        {{ as_of_date_literal() }} as as_of_date,
        clients.spend_frequency_booking_count as completed_bookings,
        plans.current_plan_code,
        ready_offer_plan.target_monthly_price - coalesce(current_plans.monthly_price, 0) as mrr_at_stake
    from clients
    left join exposed
        on clients.client_id = exposed.user_id
    left join plans
        on clients.client_id = plans.user_id
    left join catalog as current_plans
        on plans.current_plan_code = current_plans.plan_code
    cross join ready_offer_plan
    where
        exposed.user_id is null
        and ready_offer_plan.target_monthly_price > coalesce(current_plans.monthly_price, 0)

)

select * from final
