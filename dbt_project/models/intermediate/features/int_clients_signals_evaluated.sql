{#- One row per client who exists as of the as-of date, with the underlying
    value of every client readiness signal and whether it fired. Thresholds and
    windows are dbt vars (dbt_project.yml); windows are half-open and end at the
    as-of date. -#}
{%- set widest_window = [
    var('client_spend_frequency_window_days'),
    var('client_category_breadth_window_days'),
    var('client_repeat_hire_window_days'),
    var('client_search_friction_window_days'),
] | max -%}

with

clients as (

    select user_id as client_id
    from {{ ref('int_users_validated') }}
    where
        is_valid
        and role = 'client'
        and created_at < {{ as_of_timestamp() }}

),

completed_bookings as (

    select
        client_id,
        worker_id,
        category,
        booked_at
    from {{ ref('int_bookings_validated') }}
    where
        is_valid
        and booking_status = 'completed'
        and {{ in_validated_window('booked_at', widest_window) }}

),

booking_activity as (

    select
        client_id,
        count(
            case when {{ in_window('booked_at', var('client_spend_frequency_window_days')) }} then 1 end
        ) as spend_frequency_booking_count,
        count(
            distinct case
                when {{ in_window('booked_at', var('client_category_breadth_window_days')) }} then category
            end
        ) as category_breadth_category_count,
        count(
            case when {{ in_window('booked_at', var('client_search_friction_window_days')) }} then 1 end
        ) as search_friction_hire_count
    from completed_bookings
    group by client_id

),

worker_pairs as (

    select
        client_id,
        worker_id,
        count(*) as booking_count,
        max(booked_at) as last_booked_at
    from completed_bookings
    where {{ in_window('booked_at', var('client_repeat_hire_window_days')) }}
    group by
        client_id,
        worker_id

),

top_worker_pairs as (

    select
        client_id,
        worker_id as repeat_hire_worker_id,
        booking_count as repeat_hire_booking_count
    from (
        select
            worker_pairs.*,
            row_number() over (
                partition by worker_pairs.client_id
                order by
                    worker_pairs.booking_count desc,
                    worker_pairs.last_booked_at desc,
                    worker_pairs.worker_id asc
            ) as pair_rank
        from worker_pairs
    ) as ranked_pairs
    where pair_rank = 1

),

search_activity as (

    select
        client_id,
        count(*) as search_friction_search_count
    from {{ ref('int_searches_validated') }}
    where
        is_valid
        and {{ in_validated_window('searched_at', var('client_search_friction_window_days')) }}
    group by client_id

),

measured as (

    select
        clients.client_id,
        coalesce(booking_activity.spend_frequency_booking_count, 0) as spend_frequency_booking_count,
        coalesce(booking_activity.category_breadth_category_count, 0) as category_breadth_category_count,
        coalesce(top_worker_pairs.repeat_hire_booking_count, 0) as repeat_hire_booking_count,
        top_worker_pairs.repeat_hire_worker_id,
        coalesce(search_activity.search_friction_search_count, 0) as search_friction_search_count,
        coalesce(booking_activity.search_friction_hire_count, 0) as search_friction_hire_count
    from clients
    left join booking_activity
        on clients.client_id = booking_activity.client_id
    left join top_worker_pairs
        on clients.client_id = top_worker_pairs.client_id
    left join search_activity
        on clients.client_id = search_activity.client_id

),

final as (

    select
        client_id,
        {{ as_of_date_literal() }} as as_of_date,
        spend_frequency_booking_count,
        category_breadth_category_count,
        repeat_hire_booking_count,
        repeat_hire_worker_id,
        search_friction_search_count,
        search_friction_hire_count,
        case
            when search_friction_search_count > 0
                then cast(search_friction_hire_count as {{ type_decimal() }}) / search_friction_search_count
        end as search_friction_hire_rate,
        spend_frequency_booking_count >= {{ var('client_spend_frequency_min_bookings') }}
            as has_spend_frequency_signal,
        category_breadth_category_count >= {{ var('client_category_breadth_min_categories') }}
            as has_category_breadth_signal,
        repeat_hire_booking_count >= {{ var('client_repeat_hire_min_bookings_same_worker') }}
            as has_repeat_hire_signal,
        (
            search_friction_search_count >= {{ var('client_search_friction_min_searches') }}
            and cast(search_friction_hire_count as {{ type_decimal() }}) / nullif(search_friction_search_count, 0)
            < {{ var('client_search_friction_max_hire_rate') }}
        ) as has_search_friction_signal
    from measured

)

select * from final
