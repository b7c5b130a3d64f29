{#- One row per user (client or worker) for the run's as-of date: the published
    score, tier and reasons (readiness_history), the offer that fits the tier or
    why it is withheld (int_users_offers_assigned), the plan position
    (int_users_plans_resolved), and every signal's underlying values and
    boolean from the user's side: the client signal columns are null on worker
    rows and the worker ones on client rows. -#}
{%- set client_signals_model = ref('int_clients_signals_evaluated') -%}
{%- set worker_signals_model = ref('int_workers_signals_evaluated') -%}

with

history as (

    select * from {{ ref('readiness_history') }}
    where as_of_date = {{ as_of_date_literal() }}

),

offers as (

    select * from {{ ref('int_users_offers_assigned') }}

),

plans as (

    select * from {{ ref('int_users_plans_resolved') }}

),

client_signals as (

    select * from {{ client_signals_model }}

),

worker_signals as (

    select * from {{ worker_signals_model }}

),

final as (

    select
        history.user_id,
        history.role,
        history.as_of_date,
        history.readiness_score,
        history.readiness_tier,
        history.readiness_reasons,
        history.previous_readiness_tier,
        history.tier_entered_on,
        {{ dbt.datediff('history.tier_entered_on', 'history.as_of_date', 'day') }} as days_in_tier,
        history.days_at_ready,
        offers.offer_code,
        offers.matched_offer_code,
        offers.is_suppressed,
        offers.suppression_reason,
        plans.current_plan_code,
        plans.is_on_trial,
        plans.has_upgraded,
        plans.last_upgraded_plan_code,
        plans.last_upgraded_at,
        {{ star_except(client_signals_model, 'client_signals', ['client_id', 'as_of_date']) }},
        {{ star_except(worker_signals_model, 'worker_signals', ['worker_id', 'as_of_date']) }}
    from history
    left join client_signals
        on
            history.role = 'client'
            and history.user_id = client_signals.client_id
    left join worker_signals
        on
            history.role = 'worker'
            and history.user_id = worker_signals.worker_id
    left join offers
        on history.user_id = offers.user_id
    left join plans
        on history.user_id = plans.user_id
    -- Only users their side's signal model evaluated for this date.
    where coalesce(client_signals.client_id, worker_signals.worker_id) is not null

)

select * from final
