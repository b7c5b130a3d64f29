{#- The personal numbers messages quote, per user as of the as-of date: what the
    client did this week and lately, what the worker's profile and proposals did.
    Signal values come from the signal models (same windows); the 7-day and
    28-day figures are computed here. -#}
with

clients as (

    select * from {{ ref('int_clients_signals_evaluated') }}

),

workers as (

    select * from {{ ref('int_workers_signals_evaluated') }}

),

recent_searches as (

    select
        client_id,
        count(*) as searches_last_7_days
    from {{ ref('int_searches_validated') }}
    where
        is_valid
        and {{ in_validated_window('searched_at', 7) }}
    group by client_id

),

recent_earnings as (

    select
        worker_id,
        sum(amount) as earnings_last_28_days,
        count(*) as completed_jobs_last_28_days
    from {{ ref('int_bookings_validated') }}
    where
        is_valid
        and booking_status = 'completed'
        and {{ in_validated_window('booked_at', 28) }}
    group by worker_id

),

client_numbers as (

    select
        clients.client_id as user_id,
        'client' as role,
        {{ json_object({
            'searches_last_7_days': 'coalesce(recent_searches.searches_last_7_days, 0)',
            'searches_last_30_days': 'clients.search_friction_search_count',
            'hires_last_30_days': 'clients.search_friction_hire_count',
            'completed_bookings_last_60_days': 'clients.spend_frequency_booking_count',
            'categories_hired_last_90_days': 'clients.category_breadth_category_count',
            'bookings_with_favourite_worker': 'clients.repeat_hire_booking_count',
            'favourite_worker_id': 'clients.repeat_hire_worker_id',
        }) }} as personal_numbers
    from clients
    left join recent_searches
        on clients.client_id = recent_searches.client_id

),

worker_numbers as (

    select
        workers.worker_id as user_id,
        'worker' as role,
        {{ json_object({
            'profile_views_last_30_days': 'workers.view_spike_view_count',
            'contacts_last_30_days': 'workers.view_spike_contact_count',
            'contact_rate_last_30_days': 'round(workers.view_spike_contact_rate, 4)',
            'proposals_decided_last_30_days': 'workers.bid_to_win_decided_count',
            'proposals_won_last_30_days': 'workers.bid_to_win_won_count',
            'earnings_last_28_days': 'coalesce(recent_earnings.earnings_last_28_days, 0)',
            'completed_jobs_last_28_days': 'coalesce(recent_earnings.completed_jobs_last_28_days, 0)',
        }) }} as personal_numbers
    from workers
    left join recent_earnings
        on workers.worker_id = recent_earnings.worker_id

),

final as (

    select
        user_id,
        role,
        {{ as_of_date_literal() }} as as_of_date,
        personal_numbers
    from client_numbers

    union all

    select
        user_id,
        role,
        {{ as_of_date_literal() }} as as_of_date,
        personal_numbers
    from worker_numbers

)

select * from final
