{#- Platform-wide comparisons the messages quote, computed from the data for the
    as-of date (one row), never constants:
    - how much faster clients on a paid plan hire: the median time from a search
      to the same client's next completed booking in the same category (within
      benchmark_search_to_hire_max_days), paid plan holders vs free clients, over
      the last benchmark_window_days days;
    - how many more contacts per profile view promoted workers get: contacts /
      views over the last 30 days of workers holding a worker boost plan vs the
      others.
    A comparison is null when either group has no data.
    Each search's first hire after it is found by one sort per client and
    category (searches and hires in time order, a running minimum read
    backwards), never by joining every search to every hire: that join is
    quadratic in a client's history and the planner cannot bound it. A hire at
    the same instant as the search sorts before it, so "after" stays strict. -#}
{%- set window_days = var('benchmark_window_days') -%}
{%- set max_days = var('benchmark_search_to_hire_max_days') -%}

with

plans as (

    select * from {{ ref('int_users_plans_resolved') }}

),

boost_plans as (

    select plan_code from {{ ref('plan_catalog') }}
    where is_worker_boost

),

searches as (

    select
        search_id,
        client_id,
        category,
        searched_at
    from {{ ref('int_searches_validated') }}
    where
        is_valid
        and {{ in_validated_window('searched_at', window_days) }}

),

hires as (

    select
        client_id,
        category,
        booked_at
    from {{ ref('int_bookings_validated') }}
    where
        is_valid
        and booking_status = 'completed'
        and {{ in_validated_window('booked_at', window_days + max_days) }}

),

searches_and_hires as (

    select
        search_id,
        client_id,
        category,
        searched_at as happened_at,
        1 as same_instant_order,
        cast(null as {{ type_timestamptz() }}) as booked_at
    from searches

    union all

    select
        cast(null as {{ dbt.type_string() }}) as search_id,
        client_id,
        category,
        booked_at as happened_at,
        0 as same_instant_order,
        booked_at
    from hires
    where booked_at < {{ as_of_timestamp() }}

),

next_hires as (

    select
        search_id,
        client_id,
        happened_at as searched_at,
        min(booked_at) over (
            partition by client_id, category
            order by happened_at desc, same_instant_order desc
            rows between unbounded preceding and 1 preceding
        ) as next_booked_at
    from searches_and_hires

),

search_to_hire as (

    select
        search_id,
        client_id,
        {{ dbt.datediff('searched_at', 'next_booked_at', 'second') }} / 3600.0 as hours_to_hire
    from next_hires
    where
        search_id is not null
        and next_booked_at <= {{ dbt.dateadd('day', max_days, 'searched_at') }}

),

client_speed as (

    select
        percentile_cont(0.5) within group (order by case when plans.current_plan_rank > 0 then search_to_hire.hours_to_hire end)
            as paid_client_median_hours_to_hire,
        percentile_cont(0.5) within group (order by case when plans.current_plan_rank = 0 then search_to_hire.hours_to_hire end)
            as free_client_median_hours_to_hire,
        count(case when plans.current_plan_rank > 0 then 1 end) as paid_client_hires_measured,
        count(case when plans.current_plan_rank = 0 then 1 end) as free_client_hires_measured
    from search_to_hire
    inner join plans
        on search_to_hire.client_id = plans.user_id

),

workers as (

    select
        workers.view_spike_view_count,
        workers.view_spike_contact_count,
        -- plan_code is unique in plan_catalog: one row per worker
        boost_plans.plan_code is not null as is_promoted
    from {{ ref('int_workers_signals_evaluated') }} as workers
    inner join plans
        on workers.worker_id = plans.user_id
    left join boost_plans
        on plans.current_plan_code = boost_plans.plan_code

),

worker_reach as (

    select
        is_promoted,
        sum(view_spike_view_count) as profile_views,
        sum(view_spike_contact_count) as contacts,
        count(*) as workers
    from workers
    group by is_promoted

),

worker_rates as (

    select
        max(case when is_promoted then cast(contacts as {{ type_decimal() }}) / nullif(profile_views, 0) end)
            as promoted_worker_contact_rate,
        max(case when not is_promoted then cast(contacts as {{ type_decimal() }}) / nullif(profile_views, 0) end)
            as other_worker_contact_rate,
        coalesce(max(case when is_promoted then workers end), 0) as promoted_workers_measured,
        coalesce(max(case when not is_promoted then workers end), 0) as other_workers_measured
    from worker_reach

),

final as (

    select
        {{ as_of_date_literal() }} as as_of_date,
        round(cast(client_speed.paid_client_median_hours_to_hire as {{ type_decimal() }}), 1) as paid_client_median_hours_to_hire,
        round(cast(client_speed.free_client_median_hours_to_hire as {{ type_decimal() }}), 1) as free_client_median_hours_to_hire,
        round(
            cast(
                100 * (
                    1 - client_speed.paid_client_median_hours_to_hire
                    / nullif(client_speed.free_client_median_hours_to_hire, 0)
                ) as {{ type_decimal() }}
            ),
            0
        ) as paid_client_hire_speedup_pct,
        client_speed.paid_client_hires_measured,
        client_speed.free_client_hires_measured,
        round(worker_rates.promoted_worker_contact_rate, 4) as promoted_worker_contact_rate,
        round(worker_rates.other_worker_contact_rate, 4) as other_worker_contact_rate,
        round(
            worker_rates.promoted_worker_contact_rate / nullif(worker_rates.other_worker_contact_rate, 0), 1
        ) as promoted_contact_rate_multiplier,
        worker_rates.promoted_workers_measured,
        worker_rates.other_workers_measured
    from client_speed
    cross join worker_rates

)

select * from final
