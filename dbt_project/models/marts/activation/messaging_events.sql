{#- The events every destination receives this run, one row per event with a
    deterministic id (the sync's ledger keeps each from being delivered twice):
    - upshift_touchpoint: a touchpoint of the plan that is due; it starts or
      advances the user's journey on its channel and carries the offer, the
      personal numbers and the platform comparison the message quotes;
    - upshift_sequence_exit: the user converted after a trigger whose sequence
      already reached them - the journey must stop (sent once per trigger). -#}
with

touchpoints as (

    select * from {{ ref('touchpoint_plan') }}

),

readiness as (

    select * from {{ ref('user_readiness') }}

),

numbers as (

    select * from {{ ref('int_users_personal_numbers_computed') }}

),

benchmarks as (

    select * from {{ ref('platform_benchmarks') }}

),

plans as (

    select * from {{ ref('int_users_plans_resolved') }}

),

due_touchpoints as (

    select
        touchpoints.touchpoint_id as event_id,
        touchpoints.user_id,
        touchpoints.role,
        'upshift_touchpoint' as event_name,
        touchpoints.due_at as occurred_at,
        {{ json_merge(json_object({
            'trigger_id': 'touchpoints.trigger_id',
            'trigger_type': 'touchpoints.trigger_type',
            'step': 'touchpoints.step',
            'channel': 'touchpoints.channel',
            'offer_code': 'touchpoints.offer_code',
            'readiness_tier': 'readiness.readiness_tier',
            'readiness_score': 'readiness.readiness_score',
            'paid_hire_speedup_pct':
                "case when touchpoints.role = 'client' then benchmarks.paid_client_hire_speedup_pct end",
            'promoted_contact_multiplier':
                "case when touchpoints.role = 'worker' then benchmarks.promoted_contact_rate_multiplier end",
        }), 'coalesce(numbers.personal_numbers, ' ~ json_empty_object() ~ ')') }} as properties
    from touchpoints
    left join readiness
        on touchpoints.user_id = readiness.user_id
    left join numbers
        on touchpoints.user_id = numbers.user_id
    cross join benchmarks
    where touchpoints.touchpoint_status = 'due'

),

exited_sequences as (

    select
        trigger_id,
        user_id,
        role,
        trigger_type,
        offer_code
    from touchpoints
    group by
        trigger_id,
        user_id,
        role,
        trigger_type,
        offer_code
    having
        count(case when touchpoint_status = 'sent' then 1 end) > 0
        and count(case when touchpoint_status = 'suppressed_converted' then 1 end) > 0

),

exits as (

    select
        {{ dbt.hash(dbt.concat(['exited_sequences.trigger_id', "'|exit'"])) }} as event_id,
        exited_sequences.user_id,
        exited_sequences.role,
        'upshift_sequence_exit' as event_name,
        plans.last_upgraded_at as occurred_at,
        {{ json_object({
            'trigger_id': 'exited_sequences.trigger_id',
            'trigger_type': 'exited_sequences.trigger_type',
            'offer_code': 'exited_sequences.offer_code',
            'upgraded_plan': 'plans.last_upgraded_plan_code',
        }) }} as properties
    from exited_sequences
    inner join plans
        on exited_sequences.user_id = plans.user_id

),

final as (

    select * from due_touchpoints
    union all
    select * from exits

)

select * from final
