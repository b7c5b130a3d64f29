{#- Behavioural trigger events up to the as-of date, one row per episode, with a
    deterministic trigger_id so a destination receives each episode once:
    - repeat_booking_same_worker: a client completes a booking with a worker they
      already booked within trigger_repeat_booking_within_days days (the
      "Preferred Pro" moment). One episode per run of such bookings: it fires on
      the second booking, not again while the bookings keep coming that close.
    - entered_ready / entered_overdue: a user's tier in readiness_history becomes
      Ready (from Cold or Warming) or Overdue (from any other tier).
    Incremental by as-of date: a run deletes the triggers from its rebuild start
    (the validation batch's first day, macros/validation_batch.sql) on and writes
    them again from the bookings and history it needs (a repeat booking looks back
    two bookings of the pair, at most 2 x within_days), so rerunning a date
    reproduces it exactly and a day's run reads days, not all history. -#}
{%- set within_days = var('trigger_repeat_booking_within_days') -%}
{%- set rebuild_start = incremental_rebuild_start_date(this, 'triggered_at') -%}
{%- set rebuild_start_at = "cast('" ~ rebuild_start ~ " 00:00:00+00' as " ~ type_timestamptz() ~ ")" -%}
{{ config(**rebuild_from_incremental_config('triggered_at')) }}

with

completed_bookings as (

    select
        booking_id,
        client_id,
        worker_id,
        category,
        amount,
        booked_at
    from {{ ref('int_bookings_validated') }}
    where
        is_valid
        and booking_status = 'completed'
        and booked_at < {{ as_of_timestamp() }}
        {%- if is_incremental() %}
        and booked_at >= {{ dbt.dateadd('day', -2 * within_days, rebuild_start_at) }}
        -- The same bound on the event date, so the planner reads it through the index.
        and partition_date >= cast('{{ iso_days_before(rebuild_start, 2 * within_days) }}' as date)
        {%- endif %}

),

pair_sequences as (

    select
        *,
        lag(booked_at) over pair_order as previous_booked_at,
        lag(booking_id) over pair_order as previous_booking_id,
        lag(booked_at, 2) over pair_order as second_previous_booked_at
    from completed_bookings
    window pair_order as (partition by client_id, worker_id order by booked_at, booking_id)

),

repeat_bookings as (

    select
        'repeat_booking_same_worker' as trigger_type,
        client_id as user_id,
        'client' as role,
        booked_at as triggered_at,
        booking_id as episode_key,
        {{ json_object({
            'worker_id': 'worker_id',
            'booking_id': 'booking_id',
            'previous_booking_id': 'previous_booking_id',
            'category': 'category',
            'days_between_bookings':
                'round(cast(' ~ seconds_between('previous_booked_at', 'booked_at') ~ ' / 86400 as ' ~ type_decimal() ~ '), 1)',
        }) }} as context
    from pair_sequences
    where
        {%- if is_incremental() %}
        booked_at >= {{ rebuild_start_at }} and
        {%- endif %}
        previous_booked_at >= {{ dbt.dateadd('day', -1 * within_days, 'booked_at') }}
        and (
            second_previous_booked_at is null
            or second_previous_booked_at < {{ dbt.dateadd('day', -1 * within_days, 'previous_booked_at') }}
        )

),

tier_changes as (

    select
        case readiness_tier
            when 'Ready' then 'entered_ready'
            when 'Overdue' then 'entered_overdue'
        end as trigger_type,
        user_id,
        role,
        cast(cast(as_of_date as {{ dbt.type_string() }}) || ' 00:00:00+00' as {{ type_timestamptz() }}) as triggered_at,
        cast(as_of_date as {{ dbt.type_string() }}) as episode_key,
        {{ json_object({
            'readiness_score': 'readiness_score',
            'readiness_tier': 'readiness_tier',
            'previous_readiness_tier': 'previous_readiness_tier',
            'readiness_reasons': 'readiness_reasons',
        }, json_keys=['readiness_reasons']) }} as context
    from {{ ref('readiness_history') }}
    where
        as_of_date <= {{ as_of_date_literal() }}
        {%- if is_incremental() %}
        and as_of_date >= cast('{{ rebuild_start }}' as date)
        {%- endif %}
        and (
            (readiness_tier = 'Ready' and coalesce(previous_readiness_tier, 'Cold') in ('Cold', 'Warming'))
            or (readiness_tier = 'Overdue' and coalesce(previous_readiness_tier, 'Cold') != 'Overdue')
        )

),

unioned as (

    select * from repeat_bookings
    union all
    select * from tier_changes

),

offers as (

    select
        offer_code,
        role,
        trigger_type,
        readiness_tier
    from {{ ref('readiness_offers') }}

),

final as (

    select
        {{ dbt.hash(dbt.concat(['unioned.trigger_type', "'|'", 'unioned.user_id', "'|'", 'unioned.episode_key'])) }}
            as trigger_id,
        unioned.user_id,
        unioned.role,
        unioned.trigger_type,
        unioned.triggered_at,
        cast(unioned.triggered_at as date) as trigger_date,
        coalesce(trigger_offers.offer_code, tier_offers.offer_code) as offer_code,
        unioned.context
    from unioned
    left join offers as trigger_offers
        on
            unioned.trigger_type = trigger_offers.trigger_type
            and unioned.role = trigger_offers.role
    left join offers as tier_offers
        on
            unioned.role = tier_offers.role
            and tier_offers.readiness_tier = case unioned.trigger_type
                when 'entered_ready' then 'Ready'
                when 'entered_overdue' then 'Overdue'
            end

)

select * from final
