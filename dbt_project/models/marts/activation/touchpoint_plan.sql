{#- Every recent trigger's touchpoint sequence (seed touchpoint_sequence: in-app
    when the signal fires, email 48 hours later, push or SMS after 7 days) with
    each step's due time and status as of the as-of date. The sync sends the
    steps that are `due`; the growth team reads the rest:
    - held_out: the user is in the measurement holdout (receives nothing);
    - suppressed_converted: the user upgraded after the trigger - no later touch;
    - suppressed_holds_plan: the user already holds the offer's plan or better;
    - sent: every destination in var sync_destinations accepted it in the sync of an
      earlier as-of date (int_touchpoints_delivered), so the plan is the same
      however often the date is rebuilt;
    - capped: the per-user frequency cap across channels is reached;
    - due: due by the as-of date (midnight) and not yet sent - the sync sends it now;
    - scheduled: due later.
    Triggers older than touchpoint_horizon_days get no plan. -#}
{%- set cap = var('touchpoint_cap_per_user') -%}
{%- set cap_days = var('touchpoint_cap_window_days') -%}

with

triggers as (

    select * from {{ ref('readiness_triggers') }}
    where triggered_at >= {{ window_start(var('touchpoint_horizon_days')) }}

),

sequence_steps as (

    select * from {{ ref('touchpoint_sequence') }}

),

holdout as (

    select * from {{ ref('int_users_holdout_assigned') }}

),

plans as (

    select * from {{ ref('int_users_plans_resolved') }}

),

offer_targets as (

    select
        offers.offer_code,
        target_plans.plan_rank as target_plan_rank
    from {{ ref('readiness_offers') }} as offers
    inner join {{ ref('plan_catalog') }} as target_plans
        on offers.target_plan_code = target_plans.plan_code

),

sent as (

    select * from {{ ref('int_touchpoints_delivered') }}

),

planned as (

    select
        {{ dbt.hash(dbt.concat(['triggers.trigger_id', "'|'", 'cast(sequence_steps.step as ' ~ dbt.type_string() ~ ')'])) }}
            as touchpoint_id,
        triggers.trigger_id,
        triggers.user_id,
        triggers.role,
        triggers.trigger_type,
        triggers.triggered_at,
        triggers.offer_code,
        sequence_steps.step,
        sequence_steps.channel,
        {{ dbt.dateadd('hour', 'sequence_steps.delay_hours', 'triggers.triggered_at') }} as due_at,
        holdout.is_holdout,
        plans.last_upgraded_at > triggers.triggered_at as has_converted_since_trigger,
        plans.current_plan_rank >= offer_targets.target_plan_rank as holds_offered_plan
    from triggers
    inner join sequence_steps
        on triggers.role = sequence_steps.role
    left join holdout
        on triggers.user_id = holdout.user_id
    left join plans
        on triggers.user_id = plans.user_id
    left join offer_targets
        on triggers.offer_code = offer_targets.offer_code

),

deliverable as (

    select
        planned.*,
        sent.sent_at,
        case
            when coalesce(planned.is_holdout, false) then 'held_out'
            when sent.touchpoint_id is not null then 'sent'
            when coalesce(planned.has_converted_since_trigger, false) then 'suppressed_converted'
            when coalesce(planned.holds_offered_plan, false) then 'suppressed_holds_plan'
        end as settled_status
    from planned
    left join sent
        on planned.touchpoint_id = sent.touchpoint_id

),

counted as (

    select
        *,
        count(case when settled_status is null or settled_status = 'sent' then 1 end) over (
            partition by user_id
            order by due_at
            range between {{ interval_days(cap_days) }} preceding and current row
        ) as touches_in_cap_window
    from deliverable

),

final as (

    select
        touchpoint_id,
        trigger_id,
        user_id,
        role,
        trigger_type,
        triggered_at,
        offer_code,
        step,
        channel,
        due_at,
        case
            when settled_status is not null then settled_status
            when touches_in_cap_window > {{ cap }} then 'capped'
            when due_at <= {{ as_of_timestamp() }} then 'due'
            else 'scheduled'
        end as touchpoint_status,
        sent_at,
        {{ as_of_date_literal() }} as as_of_date
    from counted

)

select * from final
